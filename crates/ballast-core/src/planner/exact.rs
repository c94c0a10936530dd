//! The fewest restarts to *balanced*, a tighter bound than [`super::min_moves`].
//!
//! `min_moves` counts the restarts that bring every spread service to its target. A plan
//! that reaches every target can still leave the cluster's count COV above the threshold
//! (SPEC: balanced means the COV is within it), and then more restarts are needed: on
//! `new-instance-joins` every 5-restart way to the targets leaves the COV at 25.5 % against
//! a 25 % threshold, so 6 is the least. This module finds that least number by search.
//!
//! # Definition
//! From a reference state, the fewest task relocations after which (1) every spread service
//! is at its target, by the definition [`super::objective::at_target`] checks (all tasks on
//! eligible instances, balanced at the first spread level over the values' capacities and,
//! with `spread(X), spread(instanceId)`, over the instances within each value; capacities
//! those of the reference), (2) the count COV over the reference's ACTIVE instances (replica
//! service tasks, as the simulation report measures it) is within the threshold, and (3) the
//! final placement fits: no instance over its CPU or memory, at most one task of a service
//! with host ports or `distinctInstance` per instance, and (4) it is *settled*: no service
//! short of its desired count has a task an instance could take ([`ClusterState::fits`] in the
//! final state). ECS places a waiting task as soon as it can, so a cluster never ends in an
//! unsettled state; the simulation report counts a run as ended balanced only in a settled
//! one ([`settled_snapshot`]).
//!
//! A relocation moves one replica task (any non-daemon service, whatever its strategy) from
//! one instance to another that is ACTIVE, connected and matches its memberOf constraints.
//! Tasks a service wants and has not placed (desired above its live tasks) may arrive on any
//! such instance at no cost, or not at all where (4) allows it (ECS places them; the bound
//! assumes it places them wherever suits balance best).
//! Nothing else constrains the path (resources are checked only at the end), so every real
//! sequence of restarts that ends in such a state is one of the sequences searched: the result
//! is a lower bound for any policy.
//!
//! # Search
//! Iterative deepening A* (IDA*) over per-service, per-instance counts, with the strategy
//! bound (the sum of each spread service's [`super::objective::excess_at`] bound, with tasks
//! on ineligible instances counted once each) as the admissible heuristic, and a table of
//! states seen per iteration. Each completed iteration proves that no shorter sequence
//! exists; when the node budget runs out, the bound is the depth of the iteration that was
//! running (every shallower one completed), still a bound, marked not exact.

use std::collections::HashMap;

use crate::metrics::spread;
use crate::model::{InstanceStatus, Snapshot};
use crate::placement::{ClusterState, Rule, TaskSpec};

// `even` is the definition `at_target` checks, shared so the two cannot drift apart.
use super::objective::{capacity_for, even, excess_at, spread_excess, spread_levels};

/// Work per bound by default, in units of one candidate relocation looked at (a state's
/// expansion costs services × instances² of them): a few hundred thousand states for the
/// contract scenarios and generated joins of a few instances, well under a second; large
/// clusters get the strategy bound, proved but not exact.
pub const DEFAULT_BUDGET: u64 = 20_000_000;

/// The most restarts beyond the strategy bound searched for.
const MAX_EXTRA: u32 = 6;

/// The bound and whether the search proved it exact (a sequence of that length exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tight {
    /// No sequence of fewer relocations reaches balanced.
    pub bound: u32,
    /// A sequence of exactly `bound` relocations reaches it.
    pub exact: bool,
}

struct Target {
    eligible: Vec<bool>,
    caps: Vec<u32>,
    /// The first level's value per instance (`None`: the first level is instanceId).
    value: Option<Vec<usize>>,
    n_values: usize,
    /// `spread(X), spread(instanceId)`.
    two_levels: bool,
}

struct Svc {
    movable_to: Vec<bool>,
    cpu: i64,
    memory: i64,
    single: bool,
    target: Option<Target>,
    /// Live tasks and arrivals: the most tasks the service can have placed.
    total: u32,
}

struct Problem {
    n: usize,
    svcs: Vec<Svc>,
    /// Per instance: CPU and memory left for the replica tasks (registered less what the
    /// daemons and standalone tasks hold).
    room: Vec<(i64, i64)>,
    /// Per instance: in the COV (ACTIVE), and the load one task adds (1024 / CPU units).
    active: Vec<bool>,
    weight: Vec<f64>,
    threshold: f64,
    /// Each service's task spec, in the order of `svcs`.
    specs: Vec<TaskSpec>,
    /// The reference's placement state and per-service, per-instance counts, from which a
    /// final state's is rebuilt to check it is settled ([`Problem::settled_at`]).
    reference: ClusterState,
    start: Vec<u32>,
}

impl Problem {
    fn new(reference: &Snapshot, threshold: f64) -> (Problem, Vec<u32>, ClusterState) {
        let (st, _) = ClusterState::from_snapshot(reference);
        let n = st.nodes.len();
        let mut svcs = Vec::new();
        let mut counts = Vec::new();
        let mut arrivals = Vec::new();
        let mut specs = Vec::new();
        let mut room: Vec<(i64, i64)> = st.nodes.iter().map(|x| (x.free.cpu, x.free.memory)).collect();
        for svc in reference.services.iter().filter(|s| !s.daemon) {
            let spec = TaskSpec::for_service(svc);
            let c: Vec<u32> = (0..n).map(|i| st.group_count(&spec.group, i)).collect();
            let live: u32 = c.iter().sum();
            let pending = svc.desired.saturating_sub(live);
            let total = live + pending;
            if total == 0 {
                continue;
            }
            for i in 0..n {
                room[i].0 += c[i] as i64 * spec.cpu;
                room[i].1 += c[i] as i64 * spec.memory;
            }
            let eligible: Vec<bool> = (0..n).map(|i| st.eligible(i, &spec)).collect();
            let target = spread_levels(&svc.effective_strategy()).map(|levels| {
                let caps = (0..n).map(|i| capacity_for(&st, &spec, i).max(c[i])).collect();
                let (value, n_values) = if levels[0] == "instanceId" {
                    (None, 0)
                } else {
                    let mut names: Vec<&str> = Vec::new();
                    let v = (0..n)
                        .map(|i| {
                            let name = st.spread_value(i, &levels[0]);
                            names.iter().position(|x| *x == name).unwrap_or_else(|| {
                                names.push(name);
                                names.len() - 1
                            })
                        })
                        .collect();
                    (Some(v), names.len())
                };
                let two_levels = levels[0] != "instanceId" && levels.get(1).map(String::as_str) == Some("instanceId");
                Target { eligible: eligible.clone(), caps, value, n_values, two_levels }
            });
            svcs.push(Svc {
                movable_to: eligible,
                cpu: spec.cpu,
                memory: spec.memory,
                single: !spec.host_ports.is_empty() || spec.rules.iter().any(|r| matches!(r, Rule::DistinctInstance)),
                target,
                total,
            });
            counts.extend(c);
            arrivals.push(pending);
            specs.push(spec);
        }
        // The arrivals still to come, one per service, after the per-instance counts.
        counts.extend(arrivals);
        let active: Vec<bool> =
            reference.instances.iter().map(|i| i.status == InstanceStatus::Active).collect::<Vec<_>>();
        let weight = st.nodes.iter().map(|x| 1024.0 / x.registered.cpu.max(1) as f64).collect();
        let start = counts[..svcs.len() * n].to_vec();
        let p = Problem { n, svcs, room, active, weight, threshold, specs, reference: st.clone(), start };
        (p, counts, st)
    }

    /// Worth a search: a spread service, and a count COV over two ACTIVE instances or more.
    fn searchable(&self) -> bool {
        self.svcs.iter().any(|s| s.target.is_some()) && self.active.iter().filter(|a| **a).count() >= 2
    }

    fn of<'a>(&self, counts: &'a [u32], s: usize) -> &'a [u32] {
        &counts[s * self.n..(s + 1) * self.n]
    }

    /// The strategy bound of service `s` in `counts` (admissible: each relocation lowers it
    /// by at most one).
    fn h_service(&self, counts: &[u32], s: usize) -> u32 {
        let svc = &self.svcs[s];
        let Some(t) = &svc.target else { return 0 };
        let c = self.of(counts, s);
        let outside: u32 = (0..self.n).filter(|&i| !t.eligible[i]).map(|i| c[i]).sum();
        // An instance can end with more tasks of the service than the reference's room
        // allowed (other services' tasks left it): the target counts such an instance as
        // full ([`even`]), and `excess_at` needs counts within the capacities, so the bound
        // of this state is only the tasks that must leave ineligible instances. (Counting
        // those tasks as excess would prune the way to a state that is at the target.)
        if (0..self.n).any(|i| t.eligible[i] && c[i] > t.caps[i]) {
            return outside;
        }
        let ce: Vec<u32> = (0..self.n).filter(|&i| t.eligible[i]).map(|i| c[i]).collect();
        let ke: Vec<u32> = (0..self.n).filter(|&i| t.eligible[i]).map(|i| t.caps[i]).collect();
        let room: u32 = ke.iter().sum();
        let inside: u32 = ce.iter().sum();
        let total = svc.total.min(room).max(inside);
        let inner = match &t.value {
            None => excess_at(&ce, &ke, total),
            Some(v) => {
                // Positions in `ce`, by the first level's value.
                let mut members: Vec<Vec<usize>> = vec![Vec::new(); t.n_values];
                for (pos, i) in (0..self.n).filter(|&i| t.eligible[i]).enumerate() {
                    members[v[i]].push(pos);
                }
                spread_excess(&ce, &ke, &members, t.two_levels, total)
            }
        };
        outside + inner
    }

    fn h(&self, counts: &[u32]) -> u32 {
        (0..self.svcs.len()).map(|s| self.h_service(counts, s)).sum()
    }

    fn at_target(&self, counts: &[u32], s: usize) -> bool {
        let Some(t) = &self.svcs[s].target else { return true };
        let c = self.of(counts, s);
        if (0..self.n).any(|i| !t.eligible[i] && c[i] > 0) {
            return false;
        }
        let pick = |m: &[usize]| -> (Vec<u32>, Vec<u32>) {
            (m.iter().map(|&i| c[i]).collect(), m.iter().map(|&i| t.caps[i]).collect())
        };
        let eligible: Vec<usize> = (0..self.n).filter(|&i| t.eligible[i]).collect();
        let Some(v) = &t.value else {
            let (a, b) = pick(&eligible);
            return even(&a, &b);
        };
        let members: Vec<Vec<usize>> =
            (0..t.n_values).map(|a| eligible.iter().copied().filter(|&i| v[i] == a).collect()).collect();
        let vc: Vec<u32> = members.iter().map(|m| m.iter().map(|&i| c[i]).sum()).collect();
        let vk: Vec<u32> = members.iter().map(|m| m.iter().map(|&i| t.caps[i]).sum()).collect();
        if !even(&vc, &vk) {
            return false;
        }
        !t.two_levels
            || members.iter().all(|m| {
                let (a, b) = pick(m);
                even(&a, &b)
            })
    }

    fn goal(&self, counts: &[u32]) -> bool {
        if !(0..self.svcs.len()).all(|s| self.at_target(counts, s)) {
            return false;
        }
        for i in 0..self.n {
            let (mut cpu, mut mem) = (0, 0);
            for (s, svc) in self.svcs.iter().enumerate() {
                let k = counts[s * self.n + i];
                if svc.single && k > 1 {
                    return false;
                }
                cpu += k as i64 * svc.cpu;
                mem += k as i64 * svc.memory;
            }
            if cpu > self.room[i].0 || mem > self.room[i].1 {
                return false;
            }
        }
        let loads: Vec<f64> = (0..self.n)
            .filter(|&i| self.active[i])
            .map(|i| (0..self.svcs.len()).map(|s| counts[s * self.n + i]).sum::<u32>() as f64 * self.weight[i])
            .collect();
        spread(&loads).cov_percent <= self.threshold + 1e-9
    }
}

impl Problem {
    /// Whether ECS is done placing in the state `counts` describes (arrivals not made are
    /// tasks left waiting): see [`settled`]. The state is the reference's with the replica
    /// tasks moved as `counts` says.
    fn settled_at(&self, counts: &[u32]) -> bool {
        let base = self.svcs.len() * self.n;
        if counts[base..].iter().all(|&k| k == 0) {
            return true;
        }
        let mut st = self.reference.clone();
        for (s, spec) in self.specs.iter().enumerate() {
            for i in 0..self.n {
                let (now, was) = (counts[s * self.n + i], self.start[s * self.n + i]);
                for _ in now..was {
                    st.remove(i, spec);
                }
                for _ in was..now {
                    st.place(i, spec);
                }
            }
        }
        settled(&st, &self.specs, |s| counts[base + s] > 0)
    }
}

/// Whether a final state is *settled*: no service that is `short` of its desired count has a
/// task ECS could place now ([`ClusterState::fits`]: resources, ports, constraints). ECS
/// places a wanted task as soon as an instance can take it, so a state that is not settled
/// is not where a cluster ends: the bounds' goal asks for it (condition (4) of the module's
/// definition), and the simulation report counts a run as ended balanced only in a settled
/// state.
fn settled(st: &ClusterState, specs: &[TaskSpec], short: impl Fn(usize) -> bool) -> bool {
    specs.iter().enumerate().all(|(s, spec)| !short(s) || !(0..st.nodes.len()).any(|i| st.fits(i, spec)))
}

/// Whether ECS is done placing in `snap` (see [`settled`]): no replica service below its
/// desired count has a task an instance could take now. The simulation report counts a run
/// as ended balanced, as the bounds define it, only in such a state.
pub fn settled_snapshot(snap: &Snapshot) -> bool {
    let (st, _) = ClusterState::from_snapshot(snap);
    let replica: Vec<&crate::model::Service> = snap.services.iter().filter(|s| !s.daemon).collect();
    let specs: Vec<TaskSpec> = replica.iter().map(|s| TaskSpec::for_service(s)).collect();
    let short = |s: usize| st.group_counts(&specs[s].group).iter().sum::<u32>() < replica[s].desired;
    settled(&st, &specs, short)
}

/// Takes `units` of work from `budget`: `false` (and nothing taken) when it has not as many.
fn spend(budget: &mut u64, units: usize) -> bool {
    let units = units.max(1) as u64;
    let ok = *budget >= units;
    if ok {
        *budget -= units;
    }
    ok
}

enum Outcome {
    Found,
    Exhausted,
    OutOfBudget,
}

struct Search<'a> {
    p: &'a Problem,
    seen: HashMap<Vec<u32>, u32>,
    budget: u64,
}

impl Search<'_> {
    fn dfs(&mut self, counts: &mut Vec<u32>, g: u32, limit: u32) -> Outcome {
        // A state costs its heuristic, services × instances; one expanded costs its
        // candidate relocations, services × instances² (see DEFAULT_BUDGET).
        let (ns, n) = (self.p.svcs.len(), self.p.n);
        if !spend(&mut self.budget, ns * n) {
            return Outcome::OutOfBudget;
        }
        if g + self.p.h(counts) > limit {
            return Outcome::Exhausted;
        }
        if self.p.goal(counts) && self.p.settled_at(counts) {
            return Outcome::Found;
        }
        if !spend(&mut self.budget, ns * n * n) {
            return Outcome::OutOfBudget;
        }
        let base = self.p.svcs.len() * n;
        let mut out = Outcome::Exhausted;
        // An arrival costs nothing: the same depth. Arrivals come first (g = 0): nothing
        // constrains the path, so any final state is reached with the same relocations when
        // its arrivals are made before them, straight to the instances that end with more
        // tasks of the service than they start with. For a service with at most one task per
        // instance those start with none: an arrival next to one would have to be followed by
        // a relocation that the arrival could have spared.
        for s in (0..self.p.svcs.len()).filter(|_| g == 0) {
            if counts[base + s] == 0 {
                continue;
            }
            for j in 0..n {
                let svc = &self.p.svcs[s];
                if !svc.movable_to[j] || (svc.single && counts[s * n + j] > 0) {
                    continue;
                }
                counts[base + s] -= 1;
                counts[s * n + j] += 1;
                let fresh = match self.seen.get(counts.as_slice()) {
                    Some(&d) if d <= g => false,
                    _ => {
                        self.seen.insert(counts.clone(), g);
                        true
                    }
                };
                let r = if fresh { self.dfs(counts, g, limit) } else { Outcome::Exhausted };
                counts[s * n + j] -= 1;
                counts[base + s] += 1;
                match r {
                    Outcome::Found => return Outcome::Found,
                    Outcome::OutOfBudget => return Outcome::OutOfBudget,
                    Outcome::Exhausted => {}
                }
            }
        }
        if g == limit {
            // No relocation left at this depth (arrivals, free, were tried above).
            return out;
        }
        for s in 0..self.p.svcs.len() {
            for i in 0..n {
                if counts[s * n + i] == 0 {
                    continue;
                }
                for j in 0..n {
                    if j == i || !self.p.svcs[s].movable_to[j] {
                        continue;
                    }
                    counts[s * n + i] -= 1;
                    counts[s * n + j] += 1;
                    let fresh = match self.seen.get(counts.as_slice()) {
                        Some(&d) if d <= g + 1 => false,
                        _ => {
                            self.seen.insert(counts.clone(), g + 1);
                            true
                        }
                    };
                    let r = if fresh { self.dfs(counts, g + 1, limit) } else { Outcome::Exhausted };
                    counts[s * n + j] -= 1;
                    counts[s * n + i] += 1;
                    match r {
                        Outcome::Found => return Outcome::Found,
                        Outcome::OutOfBudget => out = Outcome::OutOfBudget,
                        Outcome::Exhausted => {}
                    }
                    if matches!(out, Outcome::OutOfBudget) {
                        return out;
                    }
                }
            }
        }
        out
    }
}

/// The fewest relocations from `reference` to balanced (see the module's definition), with
/// at most `budget` units of work ([`DEFAULT_BUDGET`]). `None` when the reference is not worth a search: no
/// spread service, or the count COV over one ACTIVE instance or none.
pub fn balanced_bound(reference: &Snapshot, threshold: f64, budget: u64) -> Option<Tight> {
    let (p, mut counts, _) = Problem::new(reference, threshold);
    if !p.searchable() {
        return None;
    }
    let h0 = p.h(&counts);
    let mut search = Search { p: &p, seen: HashMap::new(), budget };
    Some(deepen(h0, |limit| {
        search.seen.clear();
        search.seen.insert(counts.clone(), 0);
        search.dfs(&mut counts, 0, limit)
    }))
}

/// Iterative deepening from the heuristic's `h0`: `iteration(limit)` searches every sequence
/// of at most `limit` restarts.
fn deepen(h0: u32, mut iteration: impl FnMut(u32) -> Outcome) -> Tight {
    for limit in h0..=h0 + MAX_EXTRA {
        match iteration(limit) {
            Outcome::Found => return Tight { bound: limit, exact: true },
            Outcome::Exhausted => {}
            // Every iteration below `limit` completed: no shorter sequence exists.
            Outcome::OutOfBudget => return Tight { bound: limit, exact: false },
        }
    }
    Tight { bound: h0 + MAX_EXTRA + 1, exact: false }
}

/// The fewest restarts to *balanced* for a policy that restarts tasks only through the
/// scheduler: a tighter bound than [`balanced_bound`] for ballast's `stop` method, the
/// redeploy baselines and every policy that never changes an instance's status.
///
/// # Definition
/// The goal is [`balanced_bound`]'s. The moves are what such a policy can do, with ECS
/// placing every new task:
/// - **stop** a replica task on any instance (one restart; stopping a task a surge placed is
///   one too, as the simulation report counts it), which leaves its service one task short;
/// - **place** one task of a service: ECS puts it on one of the instances its placement ranks
///   best in the state of that moment ([`ClusterState::best_ties`]: resources, ports and
///   constraints, then the strategy), any of the tied ones. This is how a stopped task is
///   replaced, how tasks waiting to be placed arrive, and how a raised desired count (a
///   surge, a deployment's new tasks) is placed. A service may be any number of tasks above
///   or below its desired count along the way, and must end at it.
///
/// Protection lets a policy choose the task a scale-in stops, so a stop may be any task; ECS
/// may place a task at any time after it is wanted, so a placement may come at any point of
/// the sequence; and every tie is tried. Every sequence of such a policy is therefore one of
/// the sequences searched, and the result is a lower bound for it. It is not one for a
/// policy that drains instances (a DRAINING instance takes no new task, which steers ECS's
/// placements): those are measured against [`balanced_bound`], which holds for any policy.
///
/// # Search
/// IDA* as in [`balanced_bound`], over the per-service, per-instance counts and each
/// service's tasks above or below its desired count. The heuristic is, per service, the
/// strategy bound when the service is at its desired count (a sequence of stops and
/// placements that relocates tasks is at least as long as the relocations it makes) and the
/// tasks above desired otherwise (each needs a stop).
///
/// Tasks waiting to be placed make their service start short of its desired count; it may
/// end short by as many where no instance can take one more of them (the goal is settled, as
/// [`balanced_bound`]'s is; the bound assumes ECS may place them as suits balance).
pub fn scheduler_bound(reference: &Snapshot, threshold: f64, budget: u64) -> Option<Tight> {
    let (p, counts, st) = Problem::new(reference, threshold);
    if !p.searchable() {
        return None;
    }
    // The tasks waiting to be placed are the service's first shortfall.
    let waiting: Vec<i32> = counts[p.svcs.len() * p.n..].iter().map(|&k| k as i32).collect();
    let mut state = Walk { counts, surplus: waiting.iter().map(|&k| -k).collect(), st };
    let h0 = p.h(&state.counts);
    let mut search = Placed { p: &p, waiting, seen: HashMap::new(), budget };
    Some(deepen(h0, |limit| {
        search.seen.clear();
        search.seen.insert(state.key(), 0);
        search.dfs(&mut state, 0, limit)
    }))
}

/// A state of [`scheduler_bound`]'s search: the counts as [`Problem`] lays them out (its
/// arrivals left as in the reference: here the shortfall says what is still to come), each
/// service's tasks above (positive) or below its desired count, and the placement state the
/// counts describe.
struct Walk {
    counts: Vec<u32>,
    surplus: Vec<i32>,
    st: ClusterState,
}

impl Walk {
    fn key(&self) -> Vec<u32> {
        let mut k = self.counts.clone();
        k.extend(self.surplus.iter().map(|&b| b as u32));
        k
    }
}

struct Placed<'a> {
    p: &'a Problem,
    /// Per service, the tasks waiting to be placed in the reference: a service may end that
    /// many short (ECS places them when it can; the bound assumes they may also not come).
    waiting: Vec<i32>,
    seen: HashMap<Vec<u32>, u32>,
    budget: u64,
}

impl Placed<'_> {
    fn h(&self, w: &Walk) -> u32 {
        (0..self.p.svcs.len())
            .map(|s| match w.surplus[s] {
                b if b > 0 => b as u32,
                b if self.settled(s, b) => self.p.h_service(&w.counts, s),
                _ => 0,
            })
            .sum()
    }

    /// Whether a service `b` tasks above its desired count (below, when negative) may end
    /// there: at its desired count, or short of it by at most the tasks that were waiting.
    fn settled(&self, s: usize, b: i32) -> bool {
        (-self.waiting[s]..=0).contains(&b)
    }

    /// Visits the state `w` has just reached at depth `g`: `None` when it was seen no deeper.
    fn visit(&mut self, w: &mut Walk, g: u32, limit: u32) -> Option<Outcome> {
        let key = w.key();
        if self.seen.get(&key).is_some_and(|&d| d <= g) {
            return None;
        }
        self.seen.insert(key, g);
        Some(self.dfs(w, g, limit))
    }

    /// Puts one task of service `s` on instance `i` (`delta` 1: ECS places it) or takes one
    /// off (−1: a stop), visits the state at depth `g`, and undoes the step.
    fn step(&mut self, w: &mut Walk, s: usize, i: usize, delta: i32, g: u32, limit: u32) -> Option<Outcome> {
        let p = self.p;
        let (spec, k) = (&p.specs[s], s * p.n + i);
        let apply = |w: &mut Walk, d: i32| {
            if d > 0 {
                w.st.place(i, spec)
            } else {
                w.st.remove(i, spec)
            }
            w.counts[k] = w.counts[k].wrapping_add_signed(d);
            w.surplus[s] += d;
        };
        apply(w, delta);
        let r = self.visit(w, g, limit);
        apply(w, -delta);
        if matches!(r, Some(Outcome::Found)) && std::env::var("WITNESS").is_ok() {
            eprintln!(
                "WITNESS g={g} {} {} on {}",
                if delta > 0 { "place" } else { "stop" },
                p.specs[s].group,
                w.st.nodes[i].ec2_id
            );
        }
        r
    }

    fn dfs(&mut self, w: &mut Walk, g: u32, limit: u32) -> Outcome {
        // A found sequence or a spent budget ends the search; an exhausted branch does not.
        let decisive = |r: Option<Outcome>| r.filter(|o| !matches!(o, Outcome::Exhausted));
        let (n, ns) = (self.p.n, self.p.svcs.len());
        if !spend(&mut self.budget, ns * n) {
            return Outcome::OutOfBudget;
        }
        if g + self.h(w) > limit {
            return Outcome::Exhausted;
        }
        if w.surplus.iter().enumerate().all(|(s, &b)| self.settled(s, b))
            && self.p.goal(&w.counts)
            && settled(&w.st, &self.p.specs, |s| w.surplus[s] < 0)
        {
            return Outcome::Found;
        }
        if !spend(&mut self.budget, ns * n * n) {
            return Outcome::OutOfBudget;
        }
        let left = (limit - g) as i32;
        // Placements cost nothing: a waiting task's arrival, a stopped task's replacement, or
        // a task above desired (while the stops left can still take it away again).
        for s in 0..ns {
            if w.surplus[s] >= left {
                continue;
            }
            for j in w.st.best_ties(&self.p.specs[s]) {
                if let Some(done) = decisive(self.step(w, s, j, 1, g, limit)) {
                    return done;
                }
            }
        }
        if g == limit {
            return Outcome::Exhausted;
        }
        for s in 0..ns {
            for i in 0..n {
                if w.counts[s * n + i] == 0 {
                    continue;
                }
                if let Some(done) = decisive(self.step(w, s, i, -1, g + 1, limit)) {
                    return done;
                }
            }
        }
        Outcome::Exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SnapshotBuilder;

    /// `spread(instanceId)`, 9 tasks on the first of three instances.
    fn nine_on_one_of_three() -> Snapshot {
        SnapshotBuilder::new("c")
            .service("s", 256, 512, &["spread(instanceId)"], &[])
            .instance("a", "us-east-1a", 4096, 8192)
            .instance("b", "us-east-1a", 4096, 8192)
            .instance("c", "us-east-1a", 4096, 8192)
            .tasks("s", "a", 9)
            .build()
    }

    /// A spread service at its target beside a binpack service whose 4 tasks share one of
    /// the two instances with it.
    fn binpack_beside_spread() -> Snapshot {
        SnapshotBuilder::new("c")
            .service("s", 256, 512, &["spread(instanceId)"], &[])
            .service("b", 256, 512, &["binpack(memory)"], &[])
            .instance("a", "us-east-1a", 4096, 8192)
            .instance("x", "us-east-1a", 4096, 8192)
            .tasks("s", "a", 2)
            .tasks("s", "x", 2)
            .tasks("b", "a", 4)
            .build()
    }

    /// Two instances, 6 tasks on one: three moves reach [3, 3] (COV 0).
    #[test]
    fn a_single_service_needs_exactly_its_strategy_moves() {
        let snap = SnapshotBuilder::new("c")
            .service("s", 256, 512, &["spread(instanceId)"], &[])
            .instance("a", "us-east-1a", 4096, 8192)
            .instance("b", "us-east-1a", 4096, 8192)
            .tasks("s", "a", 6)
            .build();
        assert_eq!(balanced_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 3, exact: true }));
    }

    /// A binpack service moves nothing for its own strategy, but the COV counts its tasks:
    /// with the spread service already at its target, balance needs binpack tasks to move.
    #[test]
    fn the_threshold_can_ask_for_moves_no_strategy_asks_for() {
        let snap = binpack_beside_spread();
        assert_eq!(crate::planner::min_moves(&snap), 0);
        // [6, 2]: COV 70.7 %; [5, 3] 35.4 %; [4, 4] 0.
        assert_eq!(balanced_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 2, exact: true }));
        assert_eq!(balanced_bound(&snap, 40.0, DEFAULT_BUDGET), Some(Tight { bound: 1, exact: true }));
    }

    /// Out of budget, the bound is what the completed iterations proved, never more.
    #[test]
    fn a_small_budget_gives_a_weaker_bound_not_a_wrong_one() {
        let snap = nine_on_one_of_three();
        let full = balanced_bound(&snap, 25.0, DEFAULT_BUDGET).unwrap();
        assert_eq!(full, Tight { bound: 6, exact: true });
        let cut = balanced_bound(&snap, 25.0, 30).unwrap();
        assert!(!cut.exact && cut.bound <= full.bound, "{cut:?}");
    }

    /// Tasks the service wants and has not placed arrive where ECS puts them, at no restart:
    /// a service short of tasks on new instances is balanced without any.
    #[test]
    fn arrivals_are_free() {
        let mut snap = SnapshotBuilder::new("c")
            .service("s", 128, 1024, &[], &["distinctInstance"])
            .instance("a", "us-east-1a", 2048, 16384)
            .instance("b", "us-east-1b", 2048, 16384)
            .instance("c", "us-east-1c", 2048, 16384)
            .instance("d", "us-east-1a", 2048, 16384)
            .tasks("s", "a", 1)
            .tasks("s", "b", 1)
            .build();
        snap.services[0].desired = 6;
        assert_eq!(balanced_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 0, exact: true }));
    }

    /// A cluster ends *settled*: ECS places a waiting task as soon as an instance can take
    /// it. `d` (one per instance) waits for room on `a`, which `s`'s four tasks fill; the two
    /// moves that even `s` out free that room, so `d`'s second task lands there, and the end
    /// state, [3, 3], is balanced. Neither bound may assume `d` stays unplaced, nor count `d`
    /// on `a` (beyond the reference's room there) as a task that must move.
    #[test]
    fn the_end_state_is_settled_and_may_hold_more_than_the_reference_had_room_for() {
        let mut snap = SnapshotBuilder::new("c")
            .service("s", 256, 1024, &["spread(instanceId)"], &[])
            .service("d", 256, 2048, &["spread(instanceId)"], &["distinctInstance"])
            .instance("a", "us-east-1a", 4096, 4096)
            .instance("b", "us-east-1a", 4096, 4096)
            .tasks("s", "a", 4)
            .tasks("d", "b", 1)
            .build();
        snap.services[1].desired = 2;
        let two = Some(Tight { bound: 2, exact: true });
        assert_eq!(balanced_bound(&snap, 25.0, DEFAULT_BUDGET), two);
        assert_eq!(scheduler_bound(&snap, 25.0, DEFAULT_BUDGET), two);
        // Now `d` has no room: settled. Once two of `s`'s tasks have left `a`, it has.
        let (mut st, _) = ClusterState::from_snapshot(&snap);
        let specs: Vec<TaskSpec> = snap.services.iter().map(TaskSpec::for_service).collect();
        assert!(settled(&st, &specs, |s| s == 1));
        st.remove(0, &specs[0]);
        st.remove(0, &specs[0]);
        assert!(!settled(&st, &specs, |s| s == 1));
        assert!(settled(&st, &specs, |_| false));
    }

    /// Through the scheduler, a stopped spread task's replacement goes where the strategy
    /// says, which here is where balance wants it: the two bounds agree.
    #[test]
    fn the_scheduler_bound_is_the_balanced_bound_where_ecs_places_as_balance_wants() {
        let snap = nine_on_one_of_three();
        assert_eq!(scheduler_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 6, exact: true }));
    }

    /// ECS puts a binpack task on the instance with the least memory left, so a stopped one
    /// goes back to the fuller instance: balance needs two relocations (`balanced_bound`), but
    /// through the scheduler 4 restarts, the least that first makes the emptier instance the
    /// fuller one (surge a spread task onto it, stop one on the other, stop two binpack tasks,
    /// and take the surge back once their replacements landed there).
    #[test]
    fn the_scheduler_moves_a_binpack_task_only_by_filling_the_other_instance_first() {
        let snap = binpack_beside_spread();
        assert_eq!(balanced_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 2, exact: true }));
        assert_eq!(scheduler_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 4, exact: true }));
    }

    /// With `spread(instanceId)` over [2, 1, 1] plus an empty instance, a stop puts the
    /// replacement on the empty one. A waiting task arrives where ECS puts it, free, and it
    /// does arrive where there is room (the end state is settled): one more makes 5 tasks on
    /// 4 equal instances, never within 25 % (no sequence the search tries reaches balanced);
    /// four more fill them.
    #[test]
    fn waiting_tasks_arrive_where_ecs_puts_them() {
        let mut snap = SnapshotBuilder::new("c")
            .service("s", 256, 512, &["spread(instanceId)"], &[])
            .instance("a", "us-east-1a", 4096, 8192)
            .instance("b", "us-east-1a", 4096, 8192)
            .instance("c", "us-east-1a", 4096, 8192)
            .instance("d", "us-east-1a", 4096, 8192)
            .tasks("s", "a", 2)
            .tasks("s", "b", 1)
            .tasks("s", "c", 1)
            .build();
        assert_eq!(scheduler_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 1, exact: true }));
        snap.services[0].desired = 5;
        let unreachable = Some(Tight { bound: MAX_EXTRA + 1, exact: false });
        assert_eq!(scheduler_bound(&snap, 25.0, DEFAULT_BUDGET), unreachable);
        assert_eq!(balanced_bound(&snap, 25.0, DEFAULT_BUDGET), unreachable);
        snap.services[0].desired = 8;
        // The four arrivals go to d first, then to the instances with one: [2, 2, 2, 2]
        // needs no restart.
        assert_eq!(scheduler_bound(&snap, 25.0, DEFAULT_BUDGET), Some(Tight { bound: 0, exact: true }));
    }
}
