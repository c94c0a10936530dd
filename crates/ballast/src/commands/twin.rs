//! `ballast twin`: one scenario's simulated world served over AWS's wire protocols
//! (docs/twin.md). It prints where it listens on its first line of standard output, then
//! serves until it is stopped.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ballast_sim::Sim;
use ballast_sim::api::World;

use crate::cli::TwinArgs;
use crate::error::{AppError, Result};

/// Runs the twin until the process is stopped.
pub fn run(a: &TwinArgs) -> Result<()> {
    if !a.speed.is_finite() || a.speed <= 0.0 || a.speed > 10_000.0 {
        return Err(AppError::Input(format!(
            "--speed {}: give a positive factor up to 10000 (1 = real time, 10 = ten simulated seconds a second)",
            a.speed
        )));
    }
    if !a.listen.ip().is_loopback() && !a.allow_remote {
        return Err(AppError::Input(format!(
            "--listen {}: the twin accepts any signature, so it listens on loopback (127.0.0.1) unless --allow-remote is given",
            a.listen
        )));
    }
    let sc = super::load_scenario(&a.scenario)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::Runtime(format!("could not start the runtime: {e}")))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| AppError::Input(format!("--listen {}: {e}", a.listen)))?;
        let addr = listener.local_addr().map_err(|e| AppError::Runtime(e.to_string()))?;
        let world = World::new(Sim::new(&sc), ballast_twin::wall_ms(), a.speed);
        let line = format!(
            "ballast twin: scenario {} (cluster {}, region {}) at {}x on http://{addr}",
            sc.name, sc.cluster, world.sim.region, a.speed
        );
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        ballast_twin::serve(listener, Arc::new(Mutex::new(world)))
            .await
            .map_err(|e| AppError::Runtime(format!("the twin stopped: {e}")))
    })
}
