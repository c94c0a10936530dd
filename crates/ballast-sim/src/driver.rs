//! Runs a scenario with a controller (the policy under test) and produces its report.

use ballast_core::backend::{Backend, BackendError};
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;

use crate::backend::SimBackend;
use crate::engine::{Sim, Trigger};
use crate::report::{Report, Sample};
use crate::scenario::Scenario;

/// The policy under test, as the simulation drives it.
pub trait Controller {
    /// The policy's own schedule, when it has one (a baseline runs at the cadence its tool
    /// publishes); `None`: the scenario's `controller.every`.
    fn every(&self) -> Option<Millis> {
        None
    }
    /// The share of each published API limit the policy's client paces itself to (client-side
    /// token buckets, as ballast's AWS adapter keeps); `None`: it sends as fast as it can and
    /// meets the service's throttling instead.
    fn client_pacing(&self) -> Option<f64> {
        None
    }
    /// Whether the policy's process keeps what it described (task definitions) from run to
    /// run, as a warm Lambda function does.
    fn warm(&self) -> bool {
        false
    }
    /// What the policy decided in each run, one line each (for `simulate --journal`).
    fn journal(&self) -> Vec<String> {
        vec![]
    }
    /// The scheduled run (EventBridge rate).
    fn on_tick(&mut self, backend: &mut dyn Backend, cluster: &str) -> Result<(), BackendError>;
    /// An "ECS Container Instance State Change" event.
    fn on_instance_event(
        &mut self,
        backend: &mut dyn Backend,
        cluster: &str,
        event: &InstanceStateChange,
    ) -> Result<(), BackendError>;
    /// An "EC2 Spot Instance Interruption Warning" (policies that do not react ignore it).
    fn on_spot_warning(
        &mut self,
        _backend: &mut dyn Backend,
        _cluster: &str,
        _ec2_instance_id: &str,
    ) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Options for one simulation.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Kill the controller right after this many mutating calls (crash matrix).
    pub crash_after: Option<u64>,
    /// Called with the fraction of simulated time done.
    pub progress: Option<&'a dyn Fn(f64)>,
    /// Check the simulator's invariants after every step (`Outcome::sim.violations`).
    pub check_invariants: bool,
    /// Record the availability after every state change (`Outcome::sim.acct.trace`).
    pub trace: bool,
    /// The work the report's exact restart bound may spend (`None`:
    /// `planner::exact::DEFAULT_BUDGET`); more proves more bounds exact, never a wrong one.
    pub bound_work: Option<u64>,
    /// Also work out the bound for policies that restart only through the scheduler
    /// (`planner::exact::scheduler_bound`; the report's `min_moves_scheduled`). Off by
    /// default: it is a second search as long as the first.
    pub scheduler_bound: bool,
}

/// What one simulation produced.
pub struct Outcome {
    /// The report line.
    pub report: Report,
    /// The timeline (one sample a minute).
    pub timeline: Vec<Sample>,
    /// Mutating calls the policy made.
    pub mutations: u64,
    /// The final state.
    pub sim: Sim,
    /// Errors the controller returned (other than the crash).
    pub errors: Vec<String>,
    /// The controller's journal.
    pub journal: Vec<String>,
}

/// Simulates `sc` under `ctrl`.
pub fn simulate(sc: &Scenario, policy: &str, ctrl: &mut dyn Controller, opts: &RunOptions) -> Outcome {
    let mut sim = Sim::with_period(sc, ctrl.every().unwrap_or(sc.controller.every));
    sim.check = opts.check_invariants;
    if let Some(w) = opts.bound_work {
        sim.acct.bound_work = w;
    }
    sim.acct.scheduler_bound = opts.scheduler_bound;
    if opts.trace {
        sim.acct.trace = Some(vec![(Millis(0), 100.0)]);
    }
    let end = sc.duration;
    let cluster = sc.cluster.clone();
    let mut last_progress = 0.0;
    while let Some(trigger) = sim.run_until_trigger(end) {
        if let Some(p) = opts.progress {
            let f = sim.now.as_secs_f64() / end.as_secs_f64();
            if f - last_progress >= 0.01 {
                p(f);
                last_progress = f;
            }
        }
        sim.busy = true;
        sim.acct.runs += 1;
        let result = {
            let mut be = SimBackend::new(&mut sim, opts.crash_after);
            if let Some(share) = ctrl.client_pacing() {
                be = be.paced(share);
            }
            if ctrl.warm() {
                be = be.warm();
            }
            match &trigger {
                Trigger::Tick => ctrl.on_tick(&mut be, &cluster),
                Trigger::Instance(ev) => ctrl.on_instance_event(&mut be, &cluster, ev),
                Trigger::SpotWarning(id) => ctrl.on_spot_warning(&mut be, &cluster, id),
            }
        };
        sim.busy = false;
        match result {
            Ok(()) | Err(BackendError::Crashed) => {}
            Err(e) => sim.acct.errors.push(format!("at {:.1}s: {e}", sim.now.as_secs_f64())),
        }
        if sim.now >= end {
            break;
        }
    }
    sim.advance_to(end);
    sim.final_samples();
    let report = sim.report(policy);
    let errors = sim.acct.errors.clone();
    Outcome {
        report,
        timeline: sim.acct.timeline.clone(),
        mutations: sim.mutations,
        sim,
        errors,
        journal: ctrl.journal(),
    }
}

/// The do-nothing policy.
pub struct Nothing;

impl Controller for Nothing {
    fn on_tick(&mut self, _: &mut dyn Backend, _: &str) -> Result<(), BackendError> {
        Ok(())
    }
    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}
