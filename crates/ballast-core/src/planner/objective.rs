//! What "toward the target" means: spread levels, the per-level score, the lower bound on
//! moves, and the cluster measure tracked over virtual moves.

use std::collections::HashMap;

use crate::config::RebalanceConfig;
use crate::metrics::{Measure, spread};
use crate::model::{Snapshot, Strategy};
use crate::placement::{ClusterState, TaskSpec};

/// The spread fields a service's strategy asks for, in order, up to the first non-spread
/// rule; `None` when the first rule is `binpack` or `random` (concentration or randomness is
/// intended: never fight it).
pub fn spread_levels(strategy: &[Strategy]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for s in strategy {
        match s {
            Strategy::Spread(f) => out.push(if f == "host" { "instanceId".to_string() } else { f.clone() }),
            _ => break,
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// Per level, the sum over values of the squared live-task count of the group (lower is
/// more even). Compared lexicographically.
pub fn score(st: &ClusterState, spec: &TaskSpec, levels: &[String]) -> Vec<i64> {
    levels
        .iter()
        .map(|f| {
            if f == "instanceId" {
                st.group_counts(&spec.group).iter().map(|&c| c as i64 * c as i64).sum()
            } else {
                st.value_counts(&spec.group, f).iter().map(|(_, c)| (*c as i64) * (*c as i64)).sum()
            }
        })
        .collect()
}

fn lb_of(counts: &[u32]) -> u32 {
    if counts.is_empty() {
        return 0;
    }
    let total: u32 = counts.iter().sum();
    let n = counts.len() as u32;
    let (fl, ce) = (total / n, total.div_ceil(n));
    let excess: u32 = counts.iter().map(|&c| c.saturating_sub(ce)).sum();
    let deficit: u32 = counts.iter().map(|&c| fl.saturating_sub(c)).sum();
    excess.max(deficit)
}

/// A lower bound on the task restarts needed to bring the group to its spread target on the
/// eligible instances (ACTIVE, connected, satisfying memberOf; capacity ignored). Each
/// restart moves one task, so it can remove at most one task of excess above the ceiling
/// share and fill at most one below the floor share, per level. For `spread(X), spread(instanceId)`
/// the instance level is bounded within each value of X. The bound is the maximum over the
/// levels it covers.
pub fn lower_bound(st: &ClusterState, spec: &TaskSpec, levels: &[String]) -> u32 {
    let eligible: Vec<usize> = (0..st.nodes.len()).filter(|&i| st.eligible(i, spec)).collect();
    if eligible.is_empty() {
        return 0;
    }
    let first = &levels[0];
    let per_value = |field: &str| -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = Vec::new();
        for &i in &eligible {
            let key = st.spread_value(i, field).to_string();
            let c = st.group_count(&spec.group, i);
            match v.iter_mut().find(|(k, _)| *k == key) {
                Some(e) => e.1 += c,
                None => v.push((key, c)),
            }
        }
        v
    };
    if first == "instanceId" {
        let counts: Vec<u32> = eligible.iter().map(|&i| st.group_count(&spec.group, i)).collect();
        return lb_of(&counts);
    }
    let values = per_value(first);
    let lb0 = lb_of(&values.iter().map(|(_, c)| *c).collect::<Vec<_>>());
    let lb1 = if levels.get(1).map(String::as_str) == Some("instanceId") {
        values
            .iter()
            .map(|(val, _)| {
                let counts: Vec<u32> = eligible
                    .iter()
                    .filter(|&&i| st.spread_value(i, first) == val)
                    .map(|&i| st.group_count(&spec.group, i))
                    .collect();
                lb_of(&counts)
            })
            .sum()
    } else {
        0
    };
    lb0.max(lb1)
}

/// The configured measure per instance, kept up to date over virtual moves.
#[derive(Debug, Clone)]
pub struct Loads {
    measure: Measure,
    vals: Vec<f64>,
    active: Vec<bool>,
    per_task: HashMap<String, (f64, f64, f64, f64)>,
}

impl Loads {
    /// Loads of the snapshot's instances, indexed like `st`.
    pub fn new(snap: &Snapshot, st: &ClusterState, idx: &HashMap<String, usize>, cfg: &RebalanceConfig) -> Loads {
        let m = crate::metrics::loads(snap, cfg.measure, cfg.counting);
        Loads::with(snap, st, idx, cfg, m)
    }

    /// As [`Loads::new`], from loads already computed with `metrics::loads`.
    pub fn with(
        snap: &Snapshot,
        st: &ClusterState,
        idx: &HashMap<String, usize>,
        cfg: &RebalanceConfig,
        m: Vec<(String, f64)>,
    ) -> Loads {
        let mut per_task = HashMap::new();
        let mut util_of: HashMap<&str, (f64, f64)> = HashMap::new();
        for t in snap.tasks.iter().filter(|t| t.is_live()) {
            if let (Some(s), Some(u)) = (t.service.as_deref(), t.utilization) {
                util_of.entry(s).or_insert(u);
            }
        }
        for svc in &snap.services {
            let util = util_of.get(svc.name.as_str()).copied().unwrap_or((0.5, 0.5));
            let td = &svc.task_definition;
            per_task.insert(
                svc.group(),
                (td.cpu as f64, td.memory as f64, td.cpu as f64 * util.0, td.memory as f64 * util.1),
            );
        }
        let mut vals = vec![0.0; st.nodes.len()];
        let mut active = vec![false; st.nodes.len()];
        for (arn, v) in m {
            if let Some(&i) = idx.get(&arn) {
                vals[i] = v;
                active[i] = true;
            }
        }
        Loads { measure: cfg.measure, vals, active, per_task }
    }

    fn weight(&self, st: &ClusterState, group: &str, i: usize) -> f64 {
        let (c, m, uc, um) = self.per_task.get(group).copied().unwrap_or((0.0, 0.0, 0.0, 0.0));
        let reg = st.nodes[i].registered;
        let (rc, rm) = (reg.cpu.max(1) as f64, reg.memory.max(1) as f64);
        match self.measure {
            Measure::Count => 1024.0 / rc,
            Measure::CpuReserved => c / rc,
            Measure::MemoryReserved => m / rm,
            Measure::CpuUtilized => uc / rc,
            Measure::MemoryUtilized => um / rm,
        }
    }

    /// Adds (`sign` = 1) or removes (−1) one task of `group` on node `i`.
    pub fn add(&mut self, st: &ClusterState, group: &str, i: usize, sign: f64) {
        let w = self.weight(st, group, i);
        self.vals[i] += sign * w;
    }

    /// Load of node `i`.
    pub fn get(&self, i: usize) -> f64 {
        self.vals[i]
    }

    /// Mean load over ACTIVE instances.
    pub fn mean(&self) -> f64 {
        let v: Vec<f64> = self.active_values();
        spread(&v).mean
    }

    fn active_values(&self) -> Vec<f64> {
        self.vals.iter().zip(&self.active).filter(|(_, a)| **a).map(|(v, _)| *v).collect()
    }

    /// COV over ACTIVE instances, percent.
    pub fn cov(&self) -> f64 {
        spread(&self.active_values()).cov_percent
    }

    /// Marks node `i` as leaving the measure (a drained instance).
    pub fn set_active(&mut self, i: usize, on: bool) {
        self.active[i] = on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_stop_at_first_non_spread() {
        assert_eq!(spread_levels(&[Strategy::Random]), None);
        assert_eq!(
            spread_levels(&[
                Strategy::Spread("attribute:a".into()),
                Strategy::Binpack(crate::model::BinpackField::Cpu)
            ]),
            Some(vec!["attribute:a".to_string()])
        );
        assert_eq!(spread_levels(&[Strategy::Spread("host".into())]), Some(vec!["instanceId".to_string()]));
    }

    #[test]
    fn bound_of_counts() {
        assert_eq!(lb_of(&[6, 0]), 3);
        assert_eq!(lb_of(&[3, 0, 3, 3]), 2);
        assert_eq!(lb_of(&[3, 3, 3]), 0);
        assert_eq!(lb_of(&[2, 0]), 1);
        assert_eq!(lb_of(&[]), 0);
    }
}
