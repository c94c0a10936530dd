//! Imbalance measures: per-instance load relative to the instance's size, and the spread of
//! those loads as mean, sample standard deviation and coefficient of variation (seed 000).

use std::str::FromStr;

use serde::Serialize;

use crate::model::{InstanceStatus, Snapshot};

/// What "load" means for one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Live tasks per vCPU of the instance (seed 002: `count`).
    Count,
    /// Reserved CPU ÷ registered CPU (seed 002: `cpu-unreserved`).
    CpuReserved,
    /// Reserved memory ÷ registered memory (seed 002: `mem-unreserved`).
    MemoryReserved,
    /// CPU in use ÷ registered CPU (seed 002: `cpu-available`).
    CpuUtilized,
    /// Memory in use ÷ registered memory (seed 002: `mem-available`).
    MemoryUtilized,
}

impl Measure {
    /// All five, in report order.
    pub const ALL: [Measure; 5] =
        [Measure::Count, Measure::CpuReserved, Measure::MemoryReserved, Measure::CpuUtilized, Measure::MemoryUtilized];

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Count => "count",
            Measure::CpuReserved => "cpu",
            Measure::MemoryReserved => "memory",
            Measure::CpuUtilized => "cpu-utilized",
            Measure::MemoryUtilized => "memory-utilized",
        }
    }
}

impl FromStr for Measure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "count" => Measure::Count,
            "cpu" | "cpu-reserved" | "cpu-unreserved" => Measure::CpuReserved,
            "memory" | "mem" | "memory-reserved" | "mem-unreserved" => Measure::MemoryReserved,
            "cpu-utilized" | "cpu-available" => Measure::CpuUtilized,
            "memory-utilized" | "mem-available" => Measure::MemoryUtilized,
            _ => {
                return Err(format!(
                    "unknown measure `{s}`; use count, cpu, memory, cpu-utilized or memory-utilized \
                     (or seed 002's count, cpu-unreserved, mem-unreserved, cpu-available, mem-available)"
                ));
            }
        })
    }
}

/// Mean, sample standard deviation and COV of a set of loads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1), as seed 000.
    pub sd: f64,
    /// sd ÷ mean × 100 (0 when the mean is 0 or there are fewer than two values).
    pub cov_percent: f64,
}

/// Computes [`Spread`] over `values` (sample standard deviation, as seed 000).
pub fn spread(values: &[f64]) -> Spread {
    let n = values.len();
    if n == 0 {
        return Spread { mean: 0.0, sd: 0.0, cov_percent: 0.0 };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Spread { mean, sd: 0.0, cov_percent: 0.0 };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let cov_percent = if mean.abs() < 1e-12 { 0.0 } else { sd / mean * 100.0 };
    Spread { mean, sd, cov_percent }
}

/// Which tasks count toward load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counting {
    /// Count daemon tasks (default: no, they cannot move).
    pub daemons: bool,
    /// Count standalone tasks (default: no, they cannot move).
    pub standalone: bool,
}

/// Per ACTIVE instance (ARN, load) for `measure`, each relative to the instance's size.
pub fn loads(snap: &Snapshot, measure: Measure, counting: Counting) -> Vec<(String, f64)> {
    loads_at(snap, measure, counting, &crate::placement::task_nodes(snap))
}

/// [`loads`] with each task's instance already looked up (`task_nodes`, per task: the
/// position in `snap.instances` of its instance if it is live; [`crate::placement::task_nodes`]).
pub fn loads_at(
    snap: &Snapshot,
    measure: Measure,
    counting: Counting,
    task_nodes: &[Option<usize>],
) -> Vec<(String, f64)> {
    // One pass over the tasks (a cluster may hold 100,000 of them).
    let daemons: std::collections::HashSet<&str> =
        snap.services.iter().filter(|s| s.daemon).map(|s| s.name.as_str()).collect();
    let mut acc = vec![[0.0f64; 5]; snap.instances.len()];
    for (t, node) in snap.tasks.iter().zip(task_nodes) {
        let Some(k) = *node else { continue };
        if snap.instances[k].status != InstanceStatus::Active {
            continue;
        }
        let is_daemon = t.service.as_deref().is_some_and(|s| daemons.contains(s));
        let standalone = t.service.is_none();
        if (is_daemon && !counting.daemons) || (standalone && !counting.standalone) {
            continue;
        }
        let (uc, um) = t.utilization.unwrap_or((0.5, 0.5));
        let a = &mut acc[k];
        a[0] += 1.0;
        a[1] += t.cpu as f64;
        a[2] += t.memory as f64;
        a[3] += t.cpu as f64 * uc;
        a[4] += t.memory as f64 * um;
    }
    snap.instances
        .iter()
        .enumerate()
        .filter(|(_, i)| i.status == InstanceStatus::Active)
        .map(|(k, inst)| {
            let a = acc[k];
            let rc = inst.registered.cpu.max(1) as f64;
            let rm = inst.registered.memory.max(1) as f64;
            let v = match measure {
                Measure::Count => a[0] / (rc / 1024.0),
                Measure::CpuReserved => a[1] / rc,
                Measure::MemoryReserved => a[2] / rm,
                Measure::CpuUtilized => a[3] / rc,
                Measure::MemoryUtilized => a[4] / rm,
            };
            (inst.arn.clone(), v)
        })
        .collect()
}

/// COV (percent) of `measure` over the ACTIVE instances.
pub fn cov(snap: &Snapshot, measure: Measure, counting: Counting) -> f64 {
    let v: Vec<f64> = loads(snap, measure, counting).into_iter().map(|(_, v)| v).collect();
    spread(&v).cov_percent
}

/// COV of count, reserved CPU and reserved memory, as the report's `final_cov_percent`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct CovTriple {
    /// Task count.
    pub count: f64,
    /// Reserved CPU.
    pub cpu: f64,
    /// Reserved memory.
    pub memory: f64,
}

/// The three report COVs with default counting.
pub fn cov_triple(snap: &Snapshot) -> CovTriple {
    let c = Counting::default();
    CovTriple {
        count: cov(snap, Measure::Count, c),
        cpu: cov(snap, Measure::CpuReserved, c),
        memory: cov(snap, Measure::MemoryReserved, c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_000_figures() {
        let s = spread(&[13.0, 12.0, 4.0]);
        assert!((s.sd - 4.932_882_862_32).abs() < 1e-9, "{}", s.sd);
        assert!((s.mean - 9.666_666_666_67).abs() < 1e-9);
        assert_eq!(s.cov_percent.round(), 51.0);
        let s = spread(&[16.0, 14.0, 14.0]);
        assert!((s.sd - 1.154_700_538_38).abs() < 1e-9, "{}", s.sd);
        assert!((s.cov_percent - 7.872_958_216_22).abs() < 1e-9, "{}", s.cov_percent);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(spread(&[]).cov_percent, 0.0);
        assert_eq!(spread(&[5.0]).cov_percent, 0.0);
        assert_eq!(spread(&[0.0, 0.0]).cov_percent, 0.0);
    }

    #[test]
    fn measure_names() {
        for m in Measure::ALL {
            assert_eq!(m.name().parse::<Measure>().unwrap(), m);
        }
        assert_eq!("mem-unreserved".parse::<Measure>().unwrap(), Measure::MemoryReserved);
        assert_eq!("cpu-available".parse::<Measure>().unwrap(), Measure::CpuUtilized);
        assert!("disk".parse::<Measure>().is_err());
    }
}
