//! Per-service planning: which tasks to restart, and where ECS will put their replacements.

use std::borrow::Cow;

use super::objective::{Loads, lower_bound, score, spread_levels};
use super::{Mechanism, Move, Plan, ServicePlan, Skip};
use crate::config::RebalanceConfig;
use crate::model::{Service, Snapshot, TaskStatus};
use crate::placement::{ClusterState, NodeIndex, TaskSpec};

/// How much a plan may spend on the cluster measure beyond each service's strategy target.
#[derive(Debug, Clone, Copy)]
pub enum Extras<'a> {
    /// Each service's fewest restarts to its target; nothing for the measure alone.
    None,
    /// The first surge's size per service where given: more restarts than its target needs,
    /// or a strategy-neutral surge, both for the measure; the rest as [`Extras::None`].
    Sizes(&'a std::collections::BTreeMap<String, usize>),
    /// A service whose fewest restarts leave the measure above the threshold takes the surge
    /// that lowers it most, and strategy-neutral surges lower it further.
    Free,
}

/// Surge rounds planned per service and run at most.
const MAX_ROUNDS: usize = 10;

/// A live task of the service being planned.
#[derive(Debug, Clone)]
pub struct TaskRef<'a> {
    /// Task ARN (borrowed from the snapshot; owned for a planned new task).
    pub arn: Cow<'a, str>,
    /// Node index.
    pub node: usize,
    /// Running and healthy, not protected: a possible victim.
    pub movable: bool,
}

/// Live tasks grouped by service with their node indices, built once per plan (a cluster
/// may hold 100,000 tasks).
pub struct TaskIndex<'a> {
    by_service: foldhash::HashMap<&'a str, Vec<(&'a crate::model::Task, usize)>>,
}

impl<'a> TaskIndex<'a> {
    /// Groups the snapshot's live service tasks on known instances.
    pub fn new(snap: &'a Snapshot) -> Self {
        TaskIndex::at(snap, &crate::placement::task_nodes(snap))
    }

    /// [`TaskIndex::new`] with each task's node already looked up
    /// ([`crate::placement::task_nodes`]).
    pub fn at(snap: &'a Snapshot, task_nodes: &[Option<usize>]) -> Self {
        let mut by_service: foldhash::HashMap<&str, Vec<(&crate::model::Task, usize)>> = Default::default();
        for (t, node) in snap.tasks.iter().zip(task_nodes) {
            if let (Some(s), Some(node)) = (t.service.as_deref(), *node) {
                by_service.entry(s).or_default().push((t, node));
            }
        }
        TaskIndex { by_service }
    }
}

/// The nodes of instances tagged `ballast:ignore`: never drained, their tasks never moved.
pub fn ignored_nodes(snap: &Snapshot, idx: &NodeIndex) -> std::collections::HashSet<usize> {
    snap.instances.iter().filter(|i| i.ignored()).filter_map(|i| idx.get(&i.arn).copied()).collect()
}

/// The live tasks of `svc` with their node indices.
pub fn service_tasks<'a>(ti: &TaskIndex<'a>, svc: &Service) -> Vec<TaskRef<'a>> {
    service_tasks_in(ti, svc, &std::collections::HashSet::new())
}

/// [`service_tasks`], with the tasks on `fixed` instances (tagged `ballast:ignore`) never
/// movable.
pub fn service_tasks_in<'a>(
    ti: &TaskIndex<'a>,
    svc: &Service,
    fixed: &std::collections::HashSet<usize>,
) -> Vec<TaskRef<'a>> {
    let mut v: Vec<TaskRef> = ti
        .by_service
        .get(svc.name.as_str())
        .map(|ts| ts.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|&(t, node)| TaskRef {
            arn: Cow::Borrowed(t.arn.as_str()),
            node,
            movable: t.last_status == TaskStatus::Running && t.healthy && !t.protected && !fixed.contains(&node),
        })
        .collect();
    v.sort_unstable_by(|a, b| a.arn.cmp(&b.arn));
    v
}

/// The tie ECS might pick that the planner assumes (lowest load, then lowest index); the
/// flag says whether other instances tied.
fn predict(ties: &[usize], loads: &Loads) -> (usize, bool) {
    let best =
        ties.iter().copied().min_by(|&a, &b| loads.get(a).total_cmp(&loads.get(b)).then(a.cmp(&b))).expect("non-empty");
    (best, ties.len() > 1)
}

/// The share of `ties` equivalent to the predicted `to`: the same value at every spread level
/// and the same load, so a move landing there has the effect predicted.
fn equivalent(st: &ClusterState, loads: &Loads, levels: &[String], ties: &[usize], to: usize) -> f64 {
    if ties.len() < 2 {
        return 1.0;
    }
    let same = |t: usize| {
        (loads.get(t) - loads.get(to)).abs() < 1e-9
            && levels.iter().all(|f| {
                f == "instanceId"
                    || if f == crate::model::attr::AZ_SPREAD {
                        st.nodes[t].az_id == st.nodes[to].az_id
                    } else {
                        st.spread_value(t, f) == st.spread_value(to, f)
                    }
            })
    };
    ties.iter().filter(|&&t| same(t)).count() as f64 / ties.len() as f64
}

/// Greedily picks `k` victims among `tasks` (never on `exclude` nodes): each time the task
/// whose removal keeps the best spread (the value with the most tasks at each level, as ECS's
/// own scale-in does), then the busiest instance by the cluster measure. The victims are
/// removed from `st`/`loads`; the caller restores them if it does not keep them.
pub fn choose_victims(
    st: &mut ClusterState,
    loads: &mut Loads,
    spec: &TaskSpec,
    levels: &[String],
    tasks: &[TaskRef],
    exclude: &[usize],
    k: usize,
) -> Vec<usize> {
    // Candidate tasks grouped by node, in node order (so ties break the same way every
    // time); within a node, in `tasks` order, the last taken first.
    let mut cand: Vec<(usize, usize)> = tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.movable && !exclude.contains(&t.node))
        .map(|(p, t)| (t.node, p))
        .collect();
    cand.sort_unstable();
    // Per candidate node, its tasks as a range of `cand` (`lists[at]` = start, end), the end
    // moving down as victims go.
    let mut nodes: Vec<usize> = Vec::new();
    let mut lists: Vec<(usize, usize)> = Vec::new();
    for (at, &(n, _)) in cand.iter().enumerate() {
        if nodes.last() != Some(&n) {
            nodes.push(n);
            lists.push((at, at));
        }
        lists.last_mut().expect("pushed").1 = at + 1;
    }
    // Per level, each candidate node's value (an index) and the group's count per value,
    // kept up to date as victims go (for instanceId every node is its own value).
    let mut value_of: Vec<Vec<usize>> = Vec::with_capacity(levels.len());
    let mut counts: Vec<Vec<i64>> = Vec::with_capacity(levels.len());
    for f in levels {
        if f == "instanceId" {
            value_of.push((0..nodes.len()).collect());
            let per_node = st.group_counts(&spec.group);
            counts.push(nodes.iter().map(|&n| per_node.get(n).copied().unwrap_or(0) as i64).collect());
        } else if f == crate::model::attr::AZ_SPREAD {
            counts.push(st.az_counts(&spec.group).into_iter().map(i64::from).collect());
            value_of.push(nodes.iter().map(|&n| st.nodes[n].az_id).collect());
        } else {
            let totals = st.value_counts(&spec.group, f);
            let (of, values) = st.value_ids(f, &nodes);
            let mut c: Vec<Option<i64>> = vec![None; values];
            for (at, &id) in of.iter().enumerate() {
                c[id].get_or_insert_with(|| {
                    let v = st.spread_value(nodes[at], f);
                    totals.iter().find(|(k, _)| *k == v).map_or(0, |e| e.1 as i64)
                });
            }
            let c: Vec<i64> = c.into_iter().map(|v| v.unwrap_or(0)).collect();
            value_of.push(of);
            counts.push(c);
        }
    }
    let mut taken: Vec<usize> = Vec::new();
    let mut best_kv: Vec<i64> = vec![0; levels.len()];
    for _ in 0..k {
        let mut best: Option<(usize, f64)> = None;
        for (at, &(start, end)) in lists.iter().enumerate() {
            if start == end {
                continue;
            }
            // The candidate's counts against the best's, level by level (lexicographic).
            let mut ord = std::cmp::Ordering::Equal;
            for (l, &b) in best_kv.iter().enumerate() {
                ord = counts[l][value_of[l][at]].cmp(&b);
                if ord.is_ne() {
                    break;
                }
            }
            let load = loads.get(nodes[at]);
            let better = match &best {
                None => true,
                Some((_, bl)) => ord.is_gt() || (ord.is_eq() && load > *bl + 1e-12),
            };
            if better {
                best = Some((at, load));
                for (l, slot) in best_kv.iter_mut().enumerate() {
                    *slot = counts[l][value_of[l][at]];
                }
            }
        }
        let Some((at, _)) = best else { break };
        let node = nodes[at];
        lists[at].1 -= 1;
        let pos = cand[lists[at].1].1;
        for l in 0..levels.len() {
            counts[l][value_of[l][at]] -= 1;
        }
        st.remove(node, spec);
        loads.add(st, &spec.group, node, -1.0);
        taken.push(pos);
    }
    taken
}

fn restore(st: &mut ClusterState, loads: &mut Loads, spec: &TaskSpec, tasks: &[TaskRef], victims: &[usize]) {
    for &v in victims.iter().rev() {
        st.place(tasks[v].node, spec);
        loads.add(st, &spec.group, tasks[v].node, 1.0);
    }
}

struct Option_ {
    k: usize,
    score: Vec<i64>,
    cov: f64,
}

/// Picks k: the smallest k reaching the best strategy score; when the cluster measure is
/// still above its threshold, a larger k with the same score and a lower COV (neutral moves).
fn select(options: &[Option_], score0: &[i64], cov0: f64, threshold: Option<f64>) -> Option<(usize, bool)> {
    let best = options.iter().map(|o| &o.score).min()?;
    if best.as_slice() < score0 {
        let same: Vec<&Option_> = options.iter().filter(|o| &o.score == best).collect();
        let k0 = same[0];
        let Some(threshold) = threshold else { return Some((k0.k, false)) };
        if k0.cov <= threshold {
            return Some((k0.k, false));
        }
        let pick = same.iter().min_by(|a, b| a.cov.total_cmp(&b.cov).then(a.k.cmp(&b.k))).expect("non-empty");
        return Some((if pick.cov < k0.cov - 1e-9 { pick.k } else { k0.k }, false));
    }
    // No strategy gain: strategy-neutral moves only if they lower the COV.
    threshold?;
    options
        .iter()
        .filter(|o| o.score.as_slice() == score0 && o.cov < cov0 - 0.5)
        .min_by(|a, b| a.cov.total_cmp(&b.cov).then(a.k.cmp(&b.k)))
        .map(|o| (o.k, true))
}

/// A surge size asked of [`plan_surge`] rather than chosen by [`select`].
#[derive(Debug, Clone, Copy)]
enum Force {
    /// `k`, keeping the best strategy score (see [`forced`]).
    Best(usize),
    /// `k`, as long as it brings the service closer to its target: a first round that
    /// leaves the rest to later rounds ([`surge_rounds`]' look-ahead).
    Partial(usize),
}

/// The option of size `k` if it keeps the best strategy score there is (more restarts than
/// needed, for the measure), or, with no strategy gain to be had, is neutral and lowers the
/// measure as [`select`]'s neutral moves must; for [`Force::Partial`], if it lowers the score.
fn forced(options: &[Option_], score0: &[i64], cov0: f64, force: Force) -> Option<(usize, bool)> {
    let best = options.iter().map(|o| &o.score).min()?;
    let k = match force {
        Force::Best(k) => k,
        Force::Partial(k) => {
            return options.iter().find(|o| o.k == k && o.score.as_slice() < score0).map(|_| (k, false));
        }
    };
    let o = options.iter().find(|o| o.k == k)?;
    if best.as_slice() < score0 {
        (&o.score == best).then_some((k, false))
    } else {
        (o.score.as_slice() == score0 && o.cov < cov0 - 0.5).then_some((k, true))
    }
}

/// Plans a surge of up to `kmax` for one service; applies the chosen moves to `st`/`loads`.
#[allow(clippy::too_many_arguments)]
fn plan_surge(
    st: &mut ClusterState,
    loads: &mut Loads,
    svc: &Service,
    spec: &TaskSpec,
    levels: &[String],
    tasks: &[TaskRef],
    kmax: usize,
    lb: usize,
    threshold: Option<f64>,
    force: Option<Force>,
) -> Option<ServicePlan> {
    let score0 = score(st, spec, levels);
    let cov0 = loads.cov();
    let mut placed: Vec<(usize, bool)> = Vec::new();
    let mut odds: Vec<f64> = Vec::new();
    let mut options = Vec::new();
    let mut ks: Vec<usize> = vec![1, 2, 3, lb / 2, lb, lb + 1, lb + 2, lb + 3, kmax];
    ks.extend(force.map(|(Force::Best(k) | Force::Partial(k))| k));
    ks.retain(|&k| k >= 1 && k <= kmax);
    ks.sort_unstable();
    ks.dedup();
    for k in 1..=kmax {
        let ties = st.best_ties(spec);
        if ties.is_empty() {
            break;
        }
        let (to, tied) = predict(&ties, loads);
        odds.push(equivalent(st, loads, levels, &ties, to));
        st.place(to, spec);
        loads.add(st, &spec.group, to, 1.0);
        placed.push((to, tied));
        if !ks.contains(&k) {
            continue;
        }
        let nodes: Vec<usize> = placed.iter().map(|p| p.0).collect();
        let victims = choose_victims(st, loads, spec, levels, tasks, &nodes, k);
        let complete = victims.len() == k;
        if complete {
            options.push(Option_ { k, score: score(st, spec, levels), cov: loads.cov() });
        }
        restore(st, loads, spec, tasks, &victims);
        if !complete {
            break;
        }
    }
    for &(n, _) in placed.iter().rev() {
        st.remove(n, spec);
        loads.add(st, &spec.group, n, -1.0);
    }
    let (k, neutral) = force
        .and_then(|f| forced(&options, &score0, cov0, f))
        .or_else(|| select(&options, &score0, cov0, threshold))?;
    if neutral && levels.len() < svc.effective_strategy().len() {
        // A rule after the spread levels (binpack, random) decides where tasks go within
        // them; a move that leaves the spread as it is would fight that rule.
        return None;
    }
    for &(n, _) in &placed[..k] {
        st.place(n, spec);
        loads.add(st, &spec.group, n, 1.0);
    }
    let nodes: Vec<usize> = placed[..k].iter().map(|p| p.0).collect();
    let victims = choose_victims(st, loads, spec, levels, tasks, &nodes, k);
    let moves = victims
        .iter()
        .zip(&placed[..k])
        .map(|(&v, &(to, tied))| Move {
            task_arn: tasks[v].arn.to_string(),
            from: st.nodes[tasks[v].node].id.clone(),
            to: st.nodes[to].id.clone(),
            tied,
        })
        .collect();
    let live = tasks.len() as u32;
    Some(ServicePlan {
        service: svc.name.clone(),
        mechanism: Mechanism::Surge { from: svc.desired, to: svc.desired + k as u32 },
        moves,
        reason: format!(
            "{} is uneven for its strategy [{}]; surge {} task(s) (maximumPercent {} allows {} of {} desired), \
             then scale in with protection on every other task",
            svc.name,
            svc.effective_strategy().iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
            k,
            svc.max_percent,
            svc.max_tasks().max(live),
            svc.desired
        ),
        neutral_only: neutral,
        odds: odds[..k].iter().product(),
    })
}

/// Plans direct stops (no surge headroom, minimumHealthyPercent < 100): one victim at a
/// time, kept only when its predicted replacement lowers the strategy score.
#[allow(clippy::too_many_arguments)]
fn plan_stops(
    st: &mut ClusterState,
    loads: &mut Loads,
    svc: &Service,
    spec: &TaskSpec,
    levels: &[String],
    tasks: &[TaskRef],
    kmax: usize,
) -> Option<ServicePlan> {
    let mut cur = score(st, spec, levels);
    let mut moves = Vec::new();
    let mut used: Vec<usize> = Vec::new();
    for _ in 0..kmax {
        let remaining: Vec<TaskRef> =
            tasks.iter().enumerate().filter(|(i, _)| !used.contains(i)).map(|(_, t)| t.clone()).collect();
        let v = choose_victims(st, loads, spec, levels, &remaining, &[], 1);
        let Some(&vpos) = v.first() else { break };
        let from = remaining[vpos].node;
        let ties = st.best_ties(spec);
        let accept = if ties.is_empty() {
            None
        } else {
            let (to, tied) = predict(&ties, loads);
            (to != from).then_some((to, tied))
        };
        let Some((to, tied)) = accept else {
            restore(st, loads, spec, &remaining, &v);
            break;
        };
        st.place(to, spec);
        loads.add(st, &spec.group, to, 1.0);
        let s = score(st, spec, levels);
        if s >= cur {
            st.remove(to, spec);
            loads.add(st, &spec.group, to, -1.0);
            restore(st, loads, spec, &remaining, &v);
            break;
        }
        cur = s;
        let orig = tasks.iter().position(|t| t.arn == remaining[vpos].arn).expect("present");
        used.push(orig);
        moves.push(Move {
            task_arn: remaining[vpos].arn.to_string(),
            from: st.nodes[from].id.clone(),
            to: st.nodes[to].id.clone(),
            tied,
        });
    }
    if moves.is_empty() {
        return None;
    }
    Some(ServicePlan {
        service: svc.name.clone(),
        mechanism: Mechanism::Stop,
        reason: format!(
            "{} has no surge headroom (maximumPercent {}); stop {} task(s) within minimumHealthyPercent {}",
            svc.name,
            svc.max_percent,
            moves.len(),
            svc.min_healthy_percent
        ),
        moves,
        neutral_only: false,
        odds: 1.0,
    })
}

/// Whether the surge rounds look ahead ([`Rounds::look`]): on clusters small enough that
/// planning every service's rounds a few times over costs little (ACTIVE instances × spread
/// services at most [`LOOK_WORK`]: a 50-instance cluster with 4 spread services).
fn look_ahead(snap: &Snapshot) -> bool {
    let active = snap.instances.iter().filter(|i| i.status == crate::model::InstanceStatus::Active).count();
    let spread = snap.services.iter().filter(|s| !s.daemon && spread_levels(&s.effective_strategy()).is_some()).count();
    active * spread <= LOOK_WORK
}

/// See [`look_ahead`].
const LOOK_WORK: usize = 200;

/// One service's surge rounds. A batch surge places every new task before any victim stops,
/// so ECS places the new tasks by the spread the service has before the move: under an AZ
/// spread, a round moves tasks only toward the AZs with fewer tasks, and later rounds move the
/// rest. Each round takes, by default, the smallest surge that brings the service closest to
/// its target ([`select`]).
struct Rounds<'a> {
    svc: &'a Service,
    spec: &'a TaskSpec,
    levels: &'a [String],
    idx: &'a NodeIndex,
    surge_room: usize,
    /// The measure's threshold when the plan may spend on it ([`Extras::Free`]).
    threshold: Option<f64>,
    /// The threshold the run is judged by.
    cov_percent: f64,
}

/// Planned rounds: the state after them, and their plans.
type Chain = (ClusterState, Loads, Vec<ServicePlan>);

impl Rounds<'_> {
    /// Plans and applies to `st` and `loads` up to `rounds` rounds within `budget` restarts,
    /// the first of size `first` if given (its score as [`Force::Best`] asks). `lb` is the
    /// service's bound in `st` (the state changes only with a round's moves, so later rounds
    /// work theirs out).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        st: &mut ClusterState,
        loads: &mut Loads,
        mut tasks: Vec<TaskRef>,
        lb: usize,
        mut budget: usize,
        first: Option<usize>,
        look: bool,
        rounds: usize,
    ) -> Vec<ServicePlan> {
        let mut plans = Vec::new();
        for round in 0..rounds {
            let lb = if round == 0 { lb } else { lower_bound(st, self.spec, self.levels, self.svc.desired) as usize };
            let kmax = self.surge_room.min(budget).min(lb + 3);
            if kmax == 0 {
                break;
            }
            let force = first.filter(|_| round == 0).map(Force::Best);
            if look
                && force.is_none()
                && let Some(rest) = self.look(st, loads, &tasks, lb, kmax, budget, rounds - round)
            {
                plans.extend(rest);
                break;
            }
            let Some(sp) =
                plan_surge(st, loads, self.svc, self.spec, self.levels, &tasks, kmax, lb, self.threshold, force)
            else {
                break;
            };
            budget = budget.saturating_sub(sp.moves.len());
            self.follow(&mut tasks, &sp);
            let neutral = sp.neutral_only;
            plans.push(sp);
            if neutral || budget == 0 {
                break;
            }
        }
        plans
    }

    /// The service's tasks after a round: its victims gone, its new tasks where predicted
    /// (not victims of a later round: they are not running yet when it is planned).
    fn follow(&self, tasks: &mut Vec<TaskRef>, sp: &ServicePlan) {
        for (n, m) in sp.moves.iter().enumerate() {
            tasks.retain(|t| t.arn != m.task_arn);
            tasks.push(TaskRef {
                arn: Cow::Owned(format!("(new {} #{})", self.svc.name, n + 1)),
                node: self.idx[&m.to],
                movable: false,
            });
        }
    }

    /// A round of `force`'s size (or [`select`]'s), then the rounds that follow it as
    /// [`Rounds::run`] plans them without looking ahead, on a copy of the state.
    #[allow(clippy::too_many_arguments)]
    fn chain(
        &self,
        st: &ClusterState,
        loads: &Loads,
        tasks: &[TaskRef],
        lb: usize,
        kmax: usize,
        budget: usize,
        rounds: usize,
        force: Option<Force>,
    ) -> Option<Chain> {
        let (mut st, mut loads) = (st.clone(), loads.clone());
        let sp =
            plan_surge(&mut st, &mut loads, self.svc, self.spec, self.levels, tasks, kmax, lb, self.threshold, force)?;
        let mut tasks = tasks.to_vec();
        self.follow(&mut tasks, &sp);
        let left = budget.saturating_sub(sp.moves.len());
        let more = !sp.neutral_only && left > 0;
        let mut plans = vec![sp];
        if more {
            let lb = lower_bound(&st, self.spec, self.levels, self.svc.desired) as usize;
            plans.extend(self.run(&mut st, &mut loads, tasks, lb, left, None, false, rounds - 1));
        }
        Some((st, loads, plans))
    }

    /// Looks one round ahead: a smaller first round can let ECS place the next round's new
    /// tasks where the service needs them, which one larger round cannot. Under
    /// `spread(AZ), spread(instanceId)` with one AZ over its share and the new instances in
    /// both AZs, a single surge's new tasks all go to the AZ with fewer tasks (ECS spreads
    /// by AZ first), so moving tasks within the fuller AZ takes a surge that also moves more
    /// across; two surges — the first to the emptier AZ with victims in the fuller one, the
    /// second back into the fuller AZ's new instance — need fewer restarts (joining-7: 4
    /// instead of 5, the bound through the scheduler).
    ///
    /// Compares the rounds [`Rounds::run`] would plan with those that start with every
    /// smaller surge that brings the service closer to its target. Keeps, applied to `st` and
    /// `loads`, the chain with the fewest restarts that ends as close to the target, at no
    /// higher measure (or within the threshold) and no worse odds of ECS placing as
    /// predicted; `None` when what `run` would plan is that chain.
    #[allow(clippy::too_many_arguments)]
    fn look(
        &self,
        st: &mut ClusterState,
        loads: &mut Loads,
        tasks: &[TaskRef],
        lb: usize,
        kmax: usize,
        budget: usize,
        rounds: usize,
    ) -> Option<Vec<ServicePlan>> {
        let greedy = self.chain(st, loads, tasks, lb, kmax, budget, rounds, None)?;
        let restarts = |c: &Chain| c.2.iter().map(|p| p.moves.len()).sum::<usize>();
        let odds = |c: &Chain| c.2.iter().map(|p| p.odds).product::<f64>();
        let end = |c: &Chain| score(&c.0, self.spec, self.levels);
        let (g_score, g_restarts, g_cov, g_odds) = (end(&greedy), restarts(&greedy), greedy.1.cov(), odds(&greedy));
        let first = greedy.2[0].moves.len();
        let mut best: Option<Chain> = None;
        for k in 1..first {
            let Some(alt) = self.chain(st, loads, tasks, lb, kmax, budget, rounds, Some(Force::Partial(k))) else {
                continue;
            };
            let cov = alt.1.cov();
            let fewer = best.as_ref().map_or(g_restarts, restarts);
            if restarts(&alt) < fewer
                && end(&alt) <= g_score
                && (cov <= g_cov + 1e-9 || cov <= self.cov_percent)
                && odds(&alt) >= g_odds - 1e-9
            {
                best = Some(alt);
            }
        }
        let (s, l, plans) = best?;
        *st = s;
        *loads = l;
        Some(plans)
    }
}

/// Why a service cannot be touched now, if so.
fn unmovable(svc: &Service, tasks: &[TaskRef], cfg: &RebalanceConfig) -> Option<String> {
    if svc.ignored() {
        return Some(format!("tagged {}; left alone", crate::model::attr::IGNORE_TAG));
    }
    if !svc.scaled_by.is_empty() {
        return Some(format!(
            "scaled by {}: a surge or a stop would make it launch capacity or fight it over the desired count; left alone",
            svc.scaled_by.join(" and ")
        ));
    }
    // A memberOf expression ballast cannot read (ECS accepted it) would be guessed at; the
    // service is left as it is rather than planned on a guess.
    for c in &svc.constraints {
        if let crate::model::Constraint::MemberOf(e) = c
            && let Err(why) = crate::cql::Expr::parse(e)
        {
            return Some(format!(
                "its placement constraint memberOf({e}) cannot be read ({why}), so where ECS would place its tasks cannot be predicted; left as it is"
            ));
        }
    }
    if cfg.exclude_services.contains(&svc.name) {
        return Some("excluded (by the configuration, or left to the desired count autoscale changes this run)".into());
    }
    if svc.deployments.len() > 1 || tasks.len() as u32 != svc.desired {
        return Some(format!(
            "not at steady state ({} live of {} desired, {} deployment(s)); left to ECS",
            tasks.len(),
            svc.desired,
            svc.deployments.len().max(1)
        ));
    }
    None
}

/// The stop method: surge or stop per spread service, in `order` (service names; the
/// replica services not in it follow in name order), within the run's limit.
#[allow(clippy::too_many_arguments)]
pub fn plan_services(
    snap: &Snapshot,
    cfg: &RebalanceConfig,
    st: &mut ClusterState,
    idx: &NodeIndex,
    loads: &mut Loads,
    p: &mut Plan,
    extras: Extras,
    order: &[&str],
    ti: &TaskIndex,
) {
    let mut budget = cfg.max_restarts_per_run as usize;
    let fixed = ignored_nodes(snap, idx);
    let mut services: Vec<&Service> = snap.services.iter().filter(|s| !s.daemon).collect();
    let rank = |s: &Service| order.iter().position(|n| *n == s.name).unwrap_or(usize::MAX);
    services.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name)));
    for svc in services {
        let skip = |p: &mut Plan, reason: String| p.skipped.push(Skip { service: svc.name.clone(), reason });
        let strategy = svc.effective_strategy();
        let Some(levels) = spread_levels(&strategy) else {
            skip(p, format!("strategy {} places tasks this way on purpose; never fought", strategy[0]));
            continue;
        };
        let spec = TaskSpec::for_service(svc);
        let tasks = service_tasks_in(ti, svc, &fixed);
        if tasks.is_empty() {
            continue;
        }
        if let Some(why) = unmovable(svc, &tasks, cfg) {
            skip(p, why);
            continue;
        }
        let lb = lower_bound(st, &spec, &levels, svc.desired) as usize;
        let healthy = tasks.iter().filter(|t| t.movable).count() as u32;
        let surge_room = svc.max_tasks().saturating_sub(tasks.len() as u32) as usize;
        let stop_room = healthy.saturating_sub(svc.min_healthy_tasks()) as usize;
        if budget == 0 {
            if lb > 0 {
                skip(p, "the run's restart limit is reached; next run".into());
            }
            continue;
        }
        if surge_room > 0 {
            let look = look_ahead(snap);
            let first = match extras {
                Extras::Sizes(sizes) => sizes.get(&svc.name).copied(),
                _ => None,
            };
            let threshold = matches!(extras, Extras::Free).then_some(cfg.cov_percent);
            let r =
                Rounds { svc, spec: &spec, levels: &levels, idx, surge_room, threshold, cov_percent: cfg.cov_percent };
            let plans = r.run(st, loads, tasks, lb, budget, first, look, MAX_ROUNDS);
            let any = !plans.is_empty();
            for sp in plans {
                budget = budget.saturating_sub(sp.moves.len());
                p.services.push(sp);
            }
            if !any && lb > 0 {
                skip(p, "no restart would land closer to its strategy's target (capacity or constraints)".into());
            }
            continue;
        }
        let result = if stop_room > 0 {
            plan_stops(st, loads, svc, &spec, &levels, &tasks, stop_room.min(budget).min(lb.max(1)))
        } else {
            if lb > 0 {
                skip(
                    p,
                    format!(
                        "minimumHealthyPercent {} and maximumPercent {} leave no room to replace a task \
                         without going below its health budget",
                        svc.min_healthy_percent, svc.max_percent
                    ),
                );
            }
            continue;
        };
        match result {
            Some(sp) => {
                budget = budget.saturating_sub(sp.moves.len());
                p.services.push(sp);
            }
            None if lb > 0 => {
                skip(p, "no restart would land closer to its strategy's target (capacity or constraints)".into())
            }
            None => {}
        }
    }
    if matches!(extras, Extras::Free) && loads.cov() > cfg.cov_percent && p.services.iter().any(|s| s.neutral_only) {
        // Neutral moves are worth their restarts only when they reach the threshold.
        let dropped: Vec<ServicePlan> = p.services.iter().filter(|s| s.neutral_only).cloned().collect();
        p.services.retain(|s| !s.neutral_only);
        for sp in dropped {
            let spec = TaskSpec::for_service(snap.service(&sp.service).expect("planned from snapshot"));
            for m in &sp.moves {
                let (from, to) = (idx[&m.from], idx[&m.to]);
                st.remove(to, &spec);
                loads.add(st, &spec.group, to, -1.0);
                st.place(from, &spec);
                loads.add(st, &spec.group, from, 1.0);
            }
        }
    }
}

/// A rolling deployment as the simulated scheduler runs it: batches of new tasks placed
/// while the old ones still count for spread (within maximumPercent), then as many old
/// tasks stopped, chosen as ECS's scale-in chooses; or, without surge room, old tasks
/// stopped first within minimumHealthyPercent. Leaves the result in `st`; `None` (and `st`
/// unchanged) when the deployment could not finish.
fn roll(
    st: &mut ClusterState,
    loads: &mut Loads,
    svc: &Service,
    spec: &TaskSpec,
    tasks: &[TaskRef],
) -> Option<Vec<(usize, bool)>> {
    let live = tasks.len();
    let surge_room = (svc.max_tasks() as usize).saturating_sub(live);
    let stop_room = live.saturating_sub(svc.min_healthy_tasks() as usize);
    let mut old: Vec<usize> = tasks.iter().map(|t| t.node).collect();
    let mut placed: Vec<(usize, bool)> = Vec::new();
    let mut removed: Vec<usize> = Vec::new();
    let mut ok = true;
    while !old.is_empty() && ok {
        let batch = if surge_room > 0 { surge_room.min(old.len()) } else { stop_room.min(old.len()) };
        if batch == 0 {
            ok = false;
            break;
        }
        if surge_room == 0 {
            for _ in 0..batch {
                let n = old.remove(0);
                st.remove(n, spec);
                loads.add(st, &spec.group, n, -1.0);
                removed.push(n);
            }
        }
        for _ in 0..batch {
            let ties = st.best_ties(spec);
            if ties.is_empty() {
                ok = false;
                break;
            }
            let (to, tied) = predict(&ties, loads);
            st.place(to, spec);
            loads.add(st, &spec.group, to, 1.0);
            placed.push((to, tied));
        }
        if surge_room > 0 && ok {
            for _ in 0..batch {
                let view: Vec<(usize, bool)> = old.iter().map(|&n| (n, false)).collect();
                let ties = st.scale_in_ties(spec, &view);
                let k = ties.first().copied().unwrap_or(0);
                let n = old.remove(k);
                st.remove(n, spec);
                loads.add(st, &spec.group, n, -1.0);
                removed.push(n);
            }
        }
    }
    if ok {
        return Some(placed);
    }
    for &(n, _) in placed.iter().rev() {
        st.remove(n, spec);
        loads.add(st, &spec.group, n, -1.0);
    }
    for &n in &removed {
        st.place(n, spec);
        loads.add(st, &spec.group, n, 1.0);
    }
    None
}

fn unroll(st: &mut ClusterState, loads: &mut Loads, spec: &TaskSpec, tasks: &[TaskRef], placed: &[(usize, bool)]) {
    for &(n, _) in placed.iter().rev() {
        st.remove(n, spec);
        loads.add(st, &spec.group, n, -1.0);
    }
    for t in tasks {
        st.place(t.node, spec);
        loads.add(st, &spec.group, t.node, 1.0);
    }
}

/// The redeploy method: forceNewDeployment of each spread service whose from-scratch
/// placement would be more even than today's.
pub fn plan_redeploys(
    snap: &Snapshot,
    cfg: &RebalanceConfig,
    st: &mut ClusterState,
    idx: &NodeIndex,
    loads: &mut Loads,
    p: &mut Plan,
) {
    let mut budget = cfg.max_restarts_per_run as usize;
    let ti = TaskIndex::new(snap);
    let fixed = ignored_nodes(snap, idx);
    let mut services: Vec<&Service> = snap.services.iter().filter(|s| !s.daemon).collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    for svc in services {
        let strategy = svc.effective_strategy();
        let Some(levels) = spread_levels(&strategy) else {
            p.skipped.push(Skip { service: svc.name.clone(), reason: format!("strategy {} is intended", strategy[0]) });
            continue;
        };
        let spec = TaskSpec::for_service(svc);
        let tasks = service_tasks_in(&ti, svc, &fixed);
        if tasks.is_empty() || unmovable(svc, &tasks, cfg).is_some() || tasks.len() > budget {
            continue;
        }
        if svc.max_percent <= 100 && svc.min_healthy_percent >= 100 {
            continue;
        }
        let s0 = score(st, &spec, &levels);
        let Some(placed) = roll(st, loads, svc, &spec, &tasks) else { continue };
        if score(st, &spec, &levels) >= s0 {
            unroll(st, loads, &spec, &tasks, &placed);
            continue;
        }
        budget -= tasks.len();
        p.services.push(ServicePlan {
            service: svc.name.clone(),
            mechanism: Mechanism::Redeploy,
            moves: tasks
                .iter()
                .zip(&placed)
                .map(|(t, &(to, tied))| Move {
                    task_arn: t.arn.to_string(),
                    from: st.nodes[t.node].id.clone(),
                    to: st.nodes[to].id.clone(),
                    tied,
                })
                .collect(),
            reason: format!(
                "{} is uneven for its strategy; a new deployment re-places all {} task(s)",
                svc.name,
                tasks.len()
            ),
            neutral_only: false,
            odds: 1.0,
        });
    }
}

/// The drain method: the busiest instances whose drain is predicted to lower the COV, up to
/// `drain.max_instances`. The prediction moves every service task off the instance (what
/// ECS does when the services have surge room; docs/rebalance.md), so a drain that would only
/// shift the load elsewhere is refused with a reason.
pub fn plan_drain(
    snap: &Snapshot,
    cfg: &RebalanceConfig,
    st: &mut ClusterState,
    idx: &NodeIndex,
    loads: &mut Loads,
    p: &mut Plan,
) {
    let fixed = ignored_nodes(snap, idx);
    let mut order: Vec<usize> =
        (0..st.nodes.len()).filter(|&i| st.nodes[i].schedulable() && !fixed.contains(&i)).collect();
    order.sort_by(|&a, &b| loads.get(b).total_cmp(&loads.get(a)).then(a.cmp(&b)));
    let mut drained = 0;
    for i in order {
        if drained >= cfg.drain.max_instances {
            break;
        }
        let cov0 = loads.cov();
        let mean = loads.mean();
        let load0 = loads.get(i);
        let mut tasks: Vec<(&crate::model::Task, &Service)> = snap
            .tasks
            .iter()
            .filter(|t| t.is_live() && idx.get(&t.instance_arn) == Some(&i))
            .filter_map(|t| t.service.as_deref().and_then(|s| snap.service(s)).map(|s| (t, s)))
            .filter(|(_, s)| !s.daemon && !cfg.exclude_services.contains(&s.name))
            .collect();
        tasks.sort_by(|a, b| a.0.arn.cmp(&b.0.arn));
        st.nodes[i].active = false;
        let mut moves = Vec::new();
        let mut undo = Vec::new();
        // With surge room, ECS starts every replacement at once and stops the drained
        // tasks as soon as those are healthy, sooner than any poll can react: predict that
        // every service task leaves (docs/rebalance.md).
        for (t, svc) in tasks {
            let spec = TaskSpec::for_service(svc);
            st.remove(i, &spec);
            loads.add(st, &spec.group, i, -1.0);
            let ties = st.best_ties(&spec);
            if ties.is_empty() {
                st.place(i, &spec);
                loads.add(st, &spec.group, i, 1.0);
                continue;
            }
            let (to, tied) = predict(&ties, loads);
            st.place(to, &spec);
            loads.add(st, &spec.group, to, 1.0);
            undo.push((spec, to));
            moves.push(Move {
                task_arn: t.arn.clone(),
                from: st.nodes[i].id.clone(),
                to: st.nodes[to].id.clone(),
                tied,
            });
        }
        st.nodes[i].active = true;
        if moves.is_empty() || loads.cov() >= cov0 - 0.5 {
            if drained == 0 && p.skipped.is_empty() {
                p.skipped.push(Skip {
                    service: format!("(drain of {})", st.nodes[i].ec2_id),
                    reason: format!(
                        "draining it would move {} service task(s) and bring the COV from {:.1}% only to {:.1}%",
                        moves.len(),
                        cov0,
                        loads.cov()
                    ),
                });
            }
            for (spec, to) in undo.into_iter().rev() {
                st.remove(to, &spec);
                loads.add(st, &spec.group, to, -1.0);
                st.place(i, &spec);
                loads.add(st, &spec.group, i, 1.0);
            }
            continue;
        }
        drained += 1;
        p.services.push(ServicePlan {
            service: String::new(),
            mechanism: Mechanism::Drain { instance: st.nodes[i].id.clone() },
            reason: format!(
                "the busiest instance ({:.2} against a mean of {:.2}); drain it until its load is at most the mean, \
                 then return it to ACTIVE",
                load0, mean
            ),
            moves,
            neutral_only: false,
            odds: 1.0,
        });
    }
}

/// After a surge has placed `new_tasks`, the `k` tasks to let go: chosen on the actual state
/// as the planner would (best spread first, then the busiest instance), never a new task and,
/// where possible, not on an instance that just received one.
pub fn surge_victims(
    snap: &Snapshot,
    service: &str,
    k: usize,
    new_tasks: &[String],
    cfg: &RebalanceConfig,
) -> Vec<String> {
    let Some(svc) = snap.service(service) else { return vec![] };
    let (mut st, idx) = ClusterState::from_snapshot(snap);
    let mut loads = Loads::new(snap, &st, &idx, cfg);
    let spec = TaskSpec::for_service(svc);
    let levels = spread_levels(&svc.effective_strategy()).unwrap_or_else(|| vec!["instanceId".into()]);
    let ti = TaskIndex::new(snap);
    let mut tasks = service_tasks(&ti, svc);
    let is_new = |t: &TaskRef| new_tasks.iter().any(|n| *n == *t.arn);
    let new_nodes: Vec<usize> = tasks.iter().filter(|t| is_new(t)).map(|t| t.node).collect();
    for t in tasks.iter_mut() {
        if is_new(t) {
            t.movable = false;
        }
    }
    let mut v = choose_victims(&mut st, &mut loads, &spec, &levels, &tasks, &new_nodes, k);
    if v.len() < k {
        let more = choose_victims(&mut st, &mut loads, &spec, &levels, &tasks, &[], k);
        for m in more {
            if v.len() < k && !v.contains(&m) {
                v.push(m);
            }
        }
    }
    v.into_iter().map(|p| tasks[p].arn.to_string()).collect()
}
