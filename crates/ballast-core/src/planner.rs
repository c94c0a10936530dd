//! The rebalance planner: whether to act (the configured measure's COV against its
//! threshold), and what to do (for each replica service, the fewest task restarts whose
//! replacements — predicted with [`crate::placement`] — move the service toward the placement
//! its own strategy asks for).
//!
//! Never fights a strategy: a service whose first rule is `binpack` or `random` is left alone;
//! for spread services the objective is, per spread rule in order, the sum over values of the
//! squared task count (lower is more even; a move from a value with `a` tasks to one with `b`
//! helps exactly when `b < a − 1`). Daemon and standalone tasks are never restarted.
//! See docs/rebalance.md.
//!
//! # Layout
//! - [`objective`]: spread levels, scores, the lower bound `min_moves`, virtual loads.
//! - [`moves`]: per-service planning for the surge, stop, drain and redeploy mechanisms.

pub mod exact;
pub mod moves;
pub mod objective;

use serde::Serialize;

use crate::config::{Method, RebalanceConfig};
use crate::metrics::{self, Measure};
use crate::model::Snapshot;
use crate::placement::{ClusterState, TaskSpec};
use objective::{Loads, lower_bound, spread_levels};

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The measure is within its threshold (or there is nothing to balance).
    Balanced,
    /// Restarts are planned.
    Act,
    /// Imbalanced, but no restart would help.
    CannotImprove,
}

/// How a service's moves are carried out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mechanism {
    /// Raise desired from `from` to `to`, wait for the new tasks, then lower it back with
    /// scale-in protection on every task but the planned victims.
    Surge {
        /// Desired count now.
        from: u32,
        /// Desired count during the surge.
        to: u32,
    },
    /// StopTask the victims; the scheduler replaces them (no surge headroom).
    Stop,
    /// Drain one instance until its load is at most the mean, then return it to ACTIVE.
    Drain {
        /// The instance.
        instance: String,
    },
    /// forceNewDeployment.
    Redeploy,
}

/// One predicted task move.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    /// The task that stops (for surges: the victim of the scale-in).
    pub task_arn: String,
    /// Where it runs now.
    pub from: String,
    /// Where ECS is predicted to run its replacement.
    pub to: String,
    /// More than one instance tied for the replacement (any of them is as good).
    pub tied: bool,
}

/// The plan for one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePlan {
    /// Service name (empty for an instance drain).
    pub service: String,
    /// How.
    pub mechanism: Mechanism,
    /// The moves.
    pub moves: Vec<Move>,
    /// Why, in one line.
    pub reason: String,
    /// Only strategy-neutral moves that lower the cluster's COV.
    pub neutral_only: bool,
    /// The chance that ECS, breaking its placement ties at random, puts the new tasks where
    /// the plan predicts or somewhere equivalent (the same value at every spread level and
    /// the same load): 1 for moves with no tie. The planner's own estimate, not rendered.
    #[serde(skip)]
    pub odds: f64,
}

/// A service left alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    /// Service name.
    pub service: String,
    /// Why.
    pub reason: String,
}

/// A rebalance plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Cluster.
    pub cluster: String,
    /// Measure deciding whether to act.
    pub measure: Measure,
    /// Its COV now, percent.
    pub cov_before: f64,
    /// Its predicted COV after the plan, percent.
    pub cov_after: f64,
    /// Threshold, percent.
    pub threshold: f64,
    /// Verdict.
    pub verdict: Verdict,
    /// One line for humans.
    pub summary: String,
    /// Lower bound on restarts to reach every spread service's target from this state.
    pub min_moves: u32,
    /// Per-service plans, in execution order.
    pub services: Vec<ServicePlan>,
    /// Services left alone.
    pub skipped: Vec<Skip>,
}

impl Plan {
    /// Planned restarts.
    pub fn restarts(&self) -> usize {
        self.services.iter().map(|s| s.moves.len()).sum()
    }
}

/// The lower bound on restarts for this snapshot (sum over spread services).
pub fn min_moves(snap: &Snapshot) -> u32 {
    bound(&ClusterState::from_snapshot(snap).0, snap)
}

fn bound(st: &ClusterState, snap: &Snapshot) -> u32 {
    let mut total = 0;
    for svc in snap.services.iter().filter(|s| !s.daemon) {
        if let Some(levels) = spread_levels(&svc.effective_strategy()) {
            total += lower_bound(st, &TaskSpec::for_service(svc), &levels, svc.desired);
        }
    }
    total
}

/// Plans a rebalance of `snap` under `cfg`. Deterministic: same snapshot, same plan.
pub fn plan(snap: &Snapshot, cfg: &RebalanceConfig) -> Plan {
    plan_with(snap, cfg, &[])
}

/// As [`plan`], with room kept for `reserve`: tasks waiting to be placed (wanted and not yet
/// running), placed first where ECS would put them, so that no move takes the room they need.
pub fn plan_with(snap: &Snapshot, cfg: &RebalanceConfig, reserve: &[TaskSpec]) -> Plan {
    plan_inner(snap, cfg, reserve)
}

fn plan_inner(snap: &Snapshot, cfg: &RebalanceConfig, reserve: &[TaskSpec]) -> Plan {
    // Each task's instance is looked up once, for the measure, the state and the task index.
    let idx = crate::placement::node_index(snap);
    let task_nodes = crate::placement::task_nodes(snap);
    let measured = metrics::loads_at(snap, cfg.measure, cfg.counting, &task_nodes);
    let cov_before = metrics::spread(&measured.iter().map(|(_, v)| *v).collect::<Vec<_>>()).cov_percent;
    let active = snap.instances.iter().filter(|i| i.status == crate::model::InstanceStatus::Active).count();
    let mut p = Plan {
        cluster: snap.cluster.clone(),
        measure: cfg.measure,
        cov_before,
        cov_after: cov_before,
        threshold: cfg.cov_percent,
        verdict: Verdict::Balanced,
        summary: String::new(),
        min_moves: 0,
        services: vec![],
        skipped: vec![],
    };
    if !cfg.enabled {
        p.summary = "rebalance is disabled for this cluster".into();
        return p;
    }
    if active < 2 {
        p.summary = format!("{active} ACTIVE instance(s): nothing to balance");
        return p;
    }
    if cov_before <= cfg.cov_percent {
        p.summary = format!(
            "balanced: {} COV {:.1}% is within the {:.1}% threshold",
            cfg.measure.name(),
            cov_before,
            cfg.cov_percent
        );
        return p;
    }
    let mut st = ClusterState::from_snapshot_at(snap, &task_nodes);
    p.min_moves = bound(&st, snap);
    // The waiting tasks count where ECS will put them: in the room they take, and in the
    // measure the plan is judged by. Those with no room now are placed after the plan's
    // moves, in the room the moves free (ECS retries them).
    let mut loads = Loads::with(snap, &st, &idx, cfg, measured);
    let mut waiting = Vec::new();
    for spec in reserve {
        if !place_waiting(&mut st, &mut loads, spec) {
            waiting.push(spec.clone());
        }
    }
    match cfg.method {
        Method::Stop => {
            let ti = moves::TaskIndex::at(snap, &task_nodes);
            (_, loads, p) = fewest_restarts(snap, cfg, &st, &idx, &ti, &loads, &p, &waiting)
        }
        Method::Redeploy => moves::plan_redeploys(snap, cfg, &mut st, &idx, &mut loads, &mut p),
        Method::Drain => moves::plan_drain(snap, cfg, &mut st, &idx, &mut loads, &mut p),
    }
    p.cov_after = loads.cov();
    let restarts = p.restarts();
    if p.services.is_empty() {
        p.verdict = Verdict::CannotImprove;
        p.summary = format!(
            "cannot improve: {} COV {:.1}% is above {:.1}%, but no restart moves a service toward \
             its own placement target{}",
            cfg.measure.name(),
            cov_before,
            cfg.cov_percent,
            if p.skipped.is_empty() { String::new() } else { " (see the skipped services)".into() }
        );
    } else {
        p.verdict = Verdict::Act;
        p.summary = format!(
            "act: {} COV {:.1}% is above {:.1}%; {} restart(s) in {} step(s) predicted to bring it to {:.1}% \
             (lower bound {} restart(s))",
            cfg.measure.name(),
            cov_before,
            cfg.cov_percent,
            restarts,
            p.services.len(),
            p.cov_after,
            p.min_moves
        );
    }
    p
}

/// Places a waiting task where ECS will put it, counting it in the measure if the measure
/// counts its group; `false` when no instance has room for it.
fn place_waiting(st: &mut ClusterState, loads: &mut Loads, spec: &TaskSpec) -> bool {
    let Some(&i) = st.best_ties(spec).first() else { return false };
    st.place(i, spec);
    if loads.counts(&spec.group) {
        loads.add(st, &spec.group, i, 1.0);
    }
    true
}

/// The planning work [`fewest_restarts`] may spend, in passes × ACTIVE instances × spread
/// services (one pass costs about that): a cluster of 100 instances and 20 services gets 10
/// passes, one of 1,000 instances and 10 services 2; larger ones one pass, the plan each
/// service makes alone (there, one restart is a small share of the measure, and a pass
/// costs tens of milliseconds). At most [`MAX_PASSES`].
const PASS_WORK: usize = 20_000;

/// The most planning passes [`fewest_restarts`] makes.
const MAX_PASSES: usize = 200;

type Planned = (ClusterState, Loads, Plan);

/// The stop method's plan: [`fewest_in_order`] with the services planned in name order and,
/// where the planning work allows it ([`ORDER_PASSES`]), most constrained first too, keeping
/// the plan with the fewest restarts that reaches the threshold.
///
/// The order matters because the services' surges run one after another: an earlier
/// service's scale-in frees room, and ECS places a later service's new tasks in it. A
/// service with few instances that can take a task goes first so that it takes the room
/// there is (its new tasks land on the new instance) rather than follow other services' stops
/// into room balance did not need (joining-1: 7 restarts in name order, 5 this way, the
/// bound through the scheduler).
#[allow(clippy::too_many_arguments)]
fn fewest_restarts(
    snap: &Snapshot,
    cfg: &RebalanceConfig,
    st: &ClusterState,
    idx: &crate::placement::NodeIndex,
    ti: &moves::TaskIndex,
    loads: &Loads,
    p: &Plan,
    waiting: &[TaskSpec],
) -> Planned {
    let names = spread_services(snap);
    let by_name = fewest_in_order(snap, cfg, st, idx, ti, loads, p, waiting, &names);
    if passes(snap, names.len()) < ORDER_PASSES {
        return by_name;
    }
    let mut constrained = names.clone();
    let room = |n: &str| {
        let svc = snap.service(n).expect("named from the snapshot");
        st.candidates(&TaskSpec::for_service(svc)).len()
    };
    constrained.sort_by_key(|n| (room(n), *n));
    if constrained == names {
        return by_name;
    }
    let other = fewest_in_order(snap, cfg, st, idx, ti, loads, p, waiting, &constrained);
    let within = |r: &Planned| r.1.cov() <= cfg.cov_percent;
    let better = within(&other) && (!within(&by_name) || other.2.restarts() < by_name.2.restarts());
    if better { other } else { by_name }
}

/// The planning passes [`PASS_WORK`] allows for `services` spread services.
fn passes(snap: &Snapshot, services: usize) -> usize {
    let active = snap.instances.iter().filter(|i| i.status == crate::model::InstanceStatus::Active).count();
    PASS_WORK / (active * services).max(1)
}

/// The least planning work, in passes as [`PASS_WORK`] counts them, at which
/// [`fewest_restarts`] also tries a second order (it doubles the planning).
const ORDER_PASSES: usize = 10;

/// The stop method's plan with the fewest restarts that reaches the threshold, within
/// [`PASS_WORK`], planning the services in `order`:
/// 1. every service's fewest restarts to its strategy's target, if that is enough;
/// 2. else, from there, one more restart at a time where it lowers the measure most in
///    expectation (a larger surge of a service, or a strategy-neutral one), until within the
///    threshold, a pass per service tried. The expectation weighs the predicted drop by the
///    chance that ECS's random tie-breaking lands the surge's new tasks as predicted
///    ([`ServicePlan::odds`]); a surge that lands elsewhere is abandoned and drops nothing;
/// 3. else (or if it has fewer restarts) the plan each service makes alone, spending on the
///    measure wherever it is still above the threshold, which reaches it or drops its
///    strategy-neutral moves.
///
/// Waiting tasks with no room now (`waiting`) are placed after the moves, in the room the
/// moves free, as ECS will when it retries them: the measure is predicted with them.
#[allow(clippy::too_many_arguments)]
fn fewest_in_order(
    snap: &Snapshot,
    cfg: &RebalanceConfig,
    st: &ClusterState,
    idx: &crate::placement::NodeIndex,
    ti: &moves::TaskIndex,
    loads: &Loads,
    p: &Plan,
    waiting: &[TaskSpec],
    order: &[&str],
) -> Planned {
    let run = |extras: moves::Extras| {
        let (mut st, mut loads, mut p) = (st.clone(), loads.clone(), p.clone());
        moves::plan_services(snap, cfg, &mut st, idx, &mut loads, &mut p, extras, order, ti);
        for spec in waiting {
            place_waiting(&mut st, &mut loads, spec);
        }
        (st, loads, p)
    };
    let names = spread_services(snap);
    let passes = passes(snap, names.len()).min(MAX_PASSES);
    if passes < 2 {
        return run(moves::Extras::Free);
    }
    let within = |r: &Planned| r.1.cov() <= cfg.cov_percent;
    let base = run(moves::Extras::None);
    if within(&base) {
        return base;
    }
    let free = run(moves::Extras::Free);
    let Some(stepped) = step_up(cfg, &names, base, passes - 2, &run) else { return free };
    if within(&free) && free.2.restarts() < stepped.2.restarts() { free } else { stepped }
}

/// The replica services with a spread strategy, by name.
fn spread_services(snap: &Snapshot) -> Vec<&str> {
    let mut names: Vec<&str> = snap
        .services
        .iter()
        .filter(|s| !s.daemon && spread_levels(&s.effective_strategy()).is_some())
        .map(|s| s.name.as_str())
        .collect();
    names.sort_unstable();
    names
}

/// Step 2 of [`fewest_restarts`], in at most `passes` passes: `None` when it cannot reach
/// the threshold.
fn step_up(
    cfg: &RebalanceConfig,
    names: &[&str],
    base: Planned,
    mut passes: usize,
    run: &dyn Fn(moves::Extras) -> Planned,
) -> Option<Planned> {
    fn surge_of<'a>(p: &'a Plan, name: &str) -> Option<&'a ServicePlan> {
        p.services.iter().find(|s| s.service == name && matches!(s.mechanism, Mechanism::Surge { .. }))
    }
    let surge = |p: &Plan, name: &str| surge_of(p, name).map_or(0, |s| s.moves.len());
    let odds = |p: &Plan, name: &str| surge_of(p, name).map_or(1.0, |s| s.odds);
    let mut sizes: std::collections::BTreeMap<String, usize> =
        names.iter().map(|n| (n.to_string(), surge(&base.2, n))).collect();
    let mut cur = base;
    while cur.1.cov() > cfg.cov_percent {
        let mut best: Option<(String, f64, Planned)> = None;
        for &n in names {
            if passes == 0 {
                return None;
            }
            passes -= 1;
            let mut trial = sizes.clone();
            let k = trial[n] + 1;
            trial.insert(n.to_string(), k);
            let r = run(moves::Extras::Sizes(&trial));
            if surge(&r.2, n) != k || r.1.cov() >= cur.1.cov() - 1e-9 {
                continue;
            }
            // The COV to expect: ECS breaks placement ties at random, and a surge whose new
            // tasks land where the move no longer helps is abandoned (the COV stays).
            let expected = cur.1.cov() - odds(&r.2, n) * (cur.1.cov() - r.1.cov());
            let better = best.as_ref().is_none_or(|(_, e, b)| {
                expected < e - 1e-9 || (expected <= e + 1e-9 && r.2.restarts() < b.2.restarts())
            });
            if better {
                best = Some((n.to_string(), expected, r));
            }
        }
        let (n, _, r) = best?;
        *sizes.get_mut(&n).expect("named") += 1;
        cur = r;
    }
    Some(cur)
}

#[cfg(test)]
mod tests;
