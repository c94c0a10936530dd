//! What "toward the target" means: spread levels, the per-level score, the lower bound on
//! moves, and the cluster measure tracked over virtual moves.

use crate::config::RebalanceConfig;
use crate::metrics::{Measure, spread};
use crate::model::{Snapshot, Strategy};
use crate::placement::{ClusterState, NodeIndex, TaskSpec};

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

/// The water level of a balanced spread of `n` tasks over values with capacities `caps`:
/// `(level, extra)` such that every value holds `min(cap, level)` tasks and `extra` of the
/// values with room above the level hold one more (ECS's spread fills the emptiest value
/// with room first, so every balanced placement has this shape).
fn water_level(caps: &[u32], n: u32) -> (u32, u32) {
    let filled = |l: u32| caps.iter().map(|&k| k.min(l) as u64).sum::<u64>();
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if filled(mid) <= n as u64 { lo = mid } else { hi = mid - 1 }
    }
    (lo, (n as u64 - filled(lo)) as u32)
}

/// How many tasks of `spec` node `i` could hold with every other task on it staying put:
/// its own tasks plus what its free CPU, memory and ports take (at most one with host ports
/// or `distinctInstance`).
pub fn capacity_for(st: &ClusterState, spec: &TaskSpec, i: usize) -> u32 {
    Capacity::of(spec).at(st, spec, i, st.group_count(&spec.group, i))
}

/// [`capacity_for`] with what depends on the spec alone worked out once (the bound asks it
/// for every instance of the cluster, for every service).
struct Capacity {
    single: bool,
}

impl Capacity {
    fn of(spec: &TaskSpec) -> Capacity {
        Capacity {
            single: !spec.host_ports.is_empty()
                || spec.rules.iter().any(|r| matches!(r, crate::placement::Rule::DistinctInstance)),
        }
    }

    /// Node `i`'s capacity for the group, which has `own` tasks on it.
    fn at(&self, st: &ClusterState, spec: &TaskSpec, i: usize, own: u32) -> u32 {
        let n = &st.nodes[i];
        let fit =
            |free: i64, need: i64| if need <= 0 { u32::MAX } else { (free.max(0) / need).min(u32::MAX as i64) as u32 };
        let mut more = fit(n.free.cpu, spec.cpu).min(fit(n.free.memory, spec.memory));
        if self.single {
            let ports_free = spec.host_ports.iter().all(|p| !n.ports.contains(p));
            more = if own == 0 && ports_free { more.min(1) } else { 0 };
        }
        own.saturating_add(more).min(own.saturating_add(100_000))
    }
}

/// A lower bound on the task restarts that bring the group's spread to its target, by
/// definition (docs/rebalance.md, "The lower bound"): the target is a *balanced* placement
/// of the group's tasks (`wanted` of them: the desired count, as far as there is room; tasks
/// not yet placed arrive where the spread wants them) on its eligible instances (ACTIVE, connected, matching memberOf),
/// each instance holding at most what [`capacity_for`] allows with the other services' tasks
/// where they are. At the first spread level the counts per value must be a water-filling of
/// the value capacities (min(capacity, level), some one more), and with `spread(X),
/// spread(instanceId)` likewise per instance within each value of X. A restart moves one task
/// off one instance (and so off one value), so it lowers the excess over any one target by at
/// most one: the bound is the least excess over every balanced target, the larger of the two
/// levels' (the instance level taken per value at its most favourable total).
pub fn lower_bound(st: &ClusterState, spec: &TaskSpec, levels: &[String], wanted: u32) -> u32 {
    let eligible: Vec<usize> = (0..st.nodes.len()).filter(|&i| st.eligible(i, spec)).collect();
    if eligible.is_empty() {
        return 0;
    }
    // Per eligible instance (in `eligible`'s order): the group's tasks and its capacity.
    let counts = st.group_counts(&spec.group);
    let c: Vec<u32> = eligible.iter().map(|&i| counts.get(i).copied().unwrap_or(0)).collect();
    let capacity = Capacity::of(spec);
    let k: Vec<u32> = eligible.iter().zip(&c).map(|(&i, &own)| capacity.at(st, spec, i, own).max(own)).collect();
    // Tasks still to be placed (desired above what runs) are placed by ECS where the spread
    // wants them, at no restart: the most favourable total is the largest that fits.
    let live: u32 = c.iter().sum();
    let room: u32 = k.iter().sum();
    let total = wanted.max(live).min(room.max(live));
    let first = &levels[0];
    if first == "instanceId" {
        return excess_at(&c, &k, total);
    }
    // Values of the first level, each with its members (positions in `eligible`).
    let (value_of, values) = st.value_ids(first, &eligible);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); values];
    for (pos, &v) in value_of.iter().enumerate() {
        members[v].push(pos);
    }
    spread_excess(&c, &k, &members, levels.get(1).map(String::as_str) == Some("instanceId"), total)
}

/// [`lower_bound`] of a placement given as counts and capacities per eligible instance
/// (`c`, `k`, each capacity at least its count), those instances grouped by the first
/// spread level's value (`members`, positions in `c`), for `total` tasks: the excess at the
/// first level and, with `spread(X), spread(instanceId)` (`two_levels`), per instance within
/// each value, the larger of the two.
pub fn spread_excess(c: &[u32], k: &[u32], members: &[Vec<usize>], two_levels: bool, total: u32) -> u32 {
    let vc: Vec<u32> = members.iter().map(|m| m.iter().map(|&p| c[p]).sum()).collect();
    let vk: Vec<u32> = members.iter().map(|m| m.iter().map(|&p| k[p]).sum()).collect();
    let lb0 = excess_at(&vc, &vk, total);
    if !two_levels {
        return lb0;
    }
    // Per value: its final total is min(cap, level) or one more; within it, the instances
    // must be balanced too, at the value's most favourable total.
    let (level, extra) = water_level(&vk, total);
    let lb1: u32 = members
        .iter()
        .zip(vk.iter())
        .map(|(m, &vcap)| {
            let mc: Vec<u32> = m.iter().map(|&p| c[p]).collect();
            let mk: Vec<u32> = m.iter().map(|&p| k[p]).collect();
            let base = vcap.min(level);
            let mut best = excess_at(&mc, &mk, base);
            if extra > 0 && vcap > level {
                best = best.min(excess_at(&mc, &mk, base + 1));
            }
            best
        })
        .sum();
    lb0.max(lb1)
}

/// Balanced at one level, by definition: no value with room holds two tasks fewer than
/// another (ECS's spread would have put a task there).
pub(crate) fn even(counts: &[u32], caps: &[u32]) -> bool {
    let top = counts.iter().copied().max().unwrap_or(0);
    counts.iter().zip(caps).all(|(&c, &k)| c + 1 >= top || c >= k)
}

/// Whether every spread service of `reference` is at the target [`lower_bound`] measures
/// against, in the state `now`: its live tasks all on the reference's eligible instances,
/// balanced at its first spread level over the values' capacities, and with `spread(X),
/// spread(instanceId)` balanced over the instances within each value. (The capacities and
/// the instances are the reference's: the target of the state the bound was taken in.)
pub fn at_target(reference: &Snapshot, now: &Snapshot) -> bool {
    let (st, idx) = ClusterState::from_snapshot(reference);
    // Each service's live tasks in `now` per reference node (one pass over the tasks).
    let mut per_node: foldhash::HashMap<&str, (Vec<u32>, u32)> = Default::default();
    for t in now.tasks.iter().filter(|t| t.is_live()) {
        let Some(s) = t.service.as_deref() else { continue };
        let e = per_node.entry(s).or_insert_with(|| (vec![0; st.nodes.len()], 0));
        e.1 += 1;
        if let Some(&i) = idx.get(&t.instance_arn) {
            e.0[i] += 1;
        }
    }
    let none = (vec![0; st.nodes.len()], 0);
    reference.services.iter().filter(|s| !s.daemon).all(|svc| {
        let Some(levels) = spread_levels(&svc.effective_strategy()) else { return true };
        let spec = TaskSpec::for_service(svc);
        let eligible: Vec<usize> = (0..st.nodes.len()).filter(|&i| st.eligible(i, &spec)).collect();
        let (counts, live) = per_node.get(svc.name.as_str()).unwrap_or(&none);
        let count = |i: usize| counts[i];
        let on_eligible: u32 = eligible.iter().map(|&i| count(i)).sum();
        if on_eligible != *live {
            return false;
        }
        let cap = |i: usize| capacity_for(&st, &spec, i).max(st.group_count(&spec.group, i));
        let groups: Vec<Vec<usize>> = if levels[0] == "instanceId" {
            vec![eligible.clone()]
        } else {
            let mut vals: Vec<(&str, Vec<usize>)> = Vec::new();
            for &i in &eligible {
                let v = st.spread_value(i, &levels[0]);
                match vals.iter_mut().find(|(k, _)| *k == v) {
                    Some(e) => e.1.push(i),
                    None => vals.push((v, vec![i])),
                }
            }
            let c: Vec<u32> = vals.iter().map(|(_, m)| m.iter().map(|&i| count(i)).sum()).collect();
            let k: Vec<u32> = vals.iter().map(|(_, m)| m.iter().map(|&i| cap(i)).sum()).collect();
            if !even(&c, &k) {
                return false;
            }
            if levels.get(1).map(String::as_str) != Some("instanceId") {
                return true;
            }
            vals.into_iter().map(|(_, m)| m).collect()
        };
        groups.iter().all(|m| {
            let c: Vec<u32> = m.iter().map(|&i| count(i)).collect();
            let k: Vec<u32> = m.iter().map(|&i| cap(i)).collect();
            even(&c, &k)
        })
    })
}

/// The fewest tasks that must leave their value (or instance) to turn `counts` into a
/// balanced placement of `total` tasks over capacities `caps` (each at least its count):
/// every balanced placement gives value `v` `min(caps[v], level)` tasks and `extra` of the
/// values with room above the level one more (ECS's spread fills the emptiest value with room
/// first); choosing for those the values that hold the most leaves the least excess. Tasks
/// beyond `total` must leave anyway; below it, arrivals are placed where the spread wants
/// them, at no restart.
pub fn excess_at(counts: &[u32], caps: &[u32], total: u32) -> u32 {
    let have: u32 = counts.iter().sum();
    let (level, extra) = water_level(caps, total.min(caps.iter().sum()));
    let base: u32 = counts.iter().zip(caps).map(|(&c, &k)| c.saturating_sub(k.min(level))).sum();
    let relieved = counts.iter().zip(caps).filter(|(c, k)| **k > level && **c > level).count() as u32;
    let e = base - relieved.min(extra);
    // Tasks beyond the value's final total leave the value, hence their instances.
    e.max(have.saturating_sub(total))
}

/// The configured measure per instance, kept up to date over virtual moves.
#[derive(Debug, Clone)]
pub struct Loads {
    measure: Measure,
    vals: Vec<f64>,
    active: Vec<bool>,
    per_task: foldhash::HashMap<String, (f64, f64, f64, f64)>,
}

impl Loads {
    /// Loads of the snapshot's instances, indexed like `st`.
    pub fn new(snap: &Snapshot, st: &ClusterState, idx: &NodeIndex, cfg: &RebalanceConfig) -> Loads {
        let m = crate::metrics::loads(snap, cfg.measure, cfg.counting);
        Loads::with(snap, st, idx, cfg, m)
    }

    /// As [`Loads::new`], from loads already computed with `metrics::loads`.
    pub fn with(
        snap: &Snapshot,
        st: &ClusterState,
        idx: &NodeIndex,
        cfg: &RebalanceConfig,
        m: Vec<(String, f64)>,
    ) -> Loads {
        let mut per_task = foldhash::HashMap::default();
        let mut util_of: foldhash::HashMap<&str, (f64, f64)> = Default::default();
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

    /// Whether tasks of `group` are a service's (a phantom, such as autoscale's buffer,
    /// takes room but is no load).
    pub fn counts(&self, group: &str) -> bool {
        self.per_task.contains_key(group)
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
        // `metrics::spread` over the active values, summed in the same order (so the same
        // figure to the bit) without collecting them: the planner asks this per option.
        let active = || self.vals.iter().zip(&self.active).filter(|(_, a)| **a).map(|(v, _)| *v);
        let n = active().count();
        if n < 2 {
            return 0.0;
        }
        let mean = active().sum::<f64>() / n as f64;
        let sd = (active().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        if mean.abs() < 1e-12 { 0.0 } else { sd / mean * 100.0 }
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

    fn excess(counts: &[u32], caps: &[u32]) -> u32 {
        excess_at(counts, caps, counts.iter().sum())
    }

    #[test]
    fn excess_over_balanced_targets() {
        let big = [100, 100, 100, 100];
        assert_eq!(excess(&[6, 0], &big[..2]), 3);
        assert_eq!(excess(&[3, 0, 3, 3], &big), 2);
        assert_eq!(excess(&[3, 3, 3], &big[..3]), 0);
        assert_eq!(excess(&[2, 0], &big[..2]), 1);
        assert_eq!(excess(&[], &[]), 0);
        // [3, 3, 1] → [3, 2, 2]: one move, whichever value keeps the extra task.
        assert_eq!(excess(&[3, 3, 1], &big[..3]), 1);
        // A full value cannot take its share: [6, 0] over capacities [6, 2] balances as [4, 2].
        assert_eq!(excess(&[6, 0], &[6, 2]), 2);
        // Nothing can move to a value without room.
        assert_eq!(excess(&[6, 0], &[6, 0]), 0);
        // Tasks still to be placed arrive where the spread wants them: [6, 0] with 4 more
        // wanted balances as [5, 5] after one move.
        assert_eq!(excess_at(&[6, 0], &[100, 100], 10), 1);
    }

    #[test]
    fn water_level_fills_the_emptiest_first() {
        assert_eq!(water_level(&[10, 10, 10], 7), (2, 1));
        assert_eq!(water_level(&[1, 10, 10], 7), (3, 0));
        assert_eq!(water_level(&[0, 0], 0), (0, 0));
    }
}
