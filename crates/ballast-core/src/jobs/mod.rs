//! The jobs, deciding together in one pass from one [`View`] (docs/rebalance.md, "One plan"):
//!
//! 1. **Recovery** of what an interrupted run left. When there is any, the run does only that
//!    (and Spot cover, which cannot wait): the other jobs decide on the next run, from a
//!    cluster that is whole again.
//! 2. **Capacity**: spot-fallback (cover, then give-back), then autoscale (services, then the
//!    group, counting the instances spot-fallback is adding and the tasks every drain in
//!    flight will need placed).
//! 3. **Moves**: rebalance, only when no capacity is changing — nothing booting, nothing
//!    draining for scale-in, no Spot notice, no instance change planned this run — so that a
//!    surge never lands on room that is about to go, and never races instances still on their
//!    way (their arrival triggers a rebalance of its own). It keeps the room of every task
//!    still waiting to be placed (with the desired counts autoscale decided).
//!
//! No job undoes another's step: each touches only its own marks, rebalance waits while
//! capacity moves, and consolidation drains every instance it gives back at once, so that
//! ECS places their tasks only on instances that stay (each task moves once).

pub mod autoscale;
pub mod rebalance;
pub mod recovery;
pub mod spot;

use std::collections::BTreeMap;

use crate::backend::{GroupInfo, Lifecycle};
use crate::config::ClusterConfig;
use crate::model::{ContainerInstance, attr};
use crate::plan::{Act, JobKind, Plan};
use crate::view::{Jobs, Trigger, View};

/// The tag a surged service carries: `from:to@holder`.
pub const SURGE_TAG: &str = "ballast:surge";
/// The value of the drain ownership attribute on instances the rebalance job drains.
pub const OWNER: &str = "ballast";

/// A surge tag's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurgeTag {
    /// Desired count before the surge.
    pub from: u32,
    /// Desired count during it.
    pub to: u32,
    /// The run (lease holder) that started it.
    pub holder: String,
}

impl SurgeTag {
    /// The tag's value.
    pub fn value(&self) -> String {
        format!("{}:{}@{}", self.from, self.to, self.holder)
    }

    /// Reads a value.
    pub fn parse(v: &str) -> Option<SurgeTag> {
        let (counts, holder) = v.split_once('@')?;
        let (from, to) = counts.split_once(':')?;
        Some(SurgeTag { from: from.parse().ok()?, to: to.parse().ok()?, holder: holder.to_string() })
    }
}

/// Whether the container instance is one of the group's.
pub fn is_member(g: &GroupInfo, i: &ContainerInstance) -> bool {
    g.instances.iter().any(|m| m.ec2_instance_id == i.ec2_instance_id)
}

/// The run's limits the jobs decide within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Task restarts this run may cause at most (the rebalance job's).
    pub restarts: u32,
}

/// The decisions' explanations the jobs keep beside the steps.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Explained {
    /// The autoscale job's.
    pub autoscale: Option<autoscale::AutoscaleDecision>,
    /// The spot-fallback job's.
    pub spot: Option<spot::SpotDecision>,
}

/// Why capacity is changing (rebalance then waits), if it is. An autoscaled group settles
/// for [`autoscale::SCALE_IN_COOLDOWN`] after an instance joins it: the room autoscale just
/// added is for the demand that asked for it, and neither consolidation nor rebalance moves
/// tasks onto it (or off it) until the group has settled.
fn capacity_moving(view: &View, plan: &Plan, cfg: &ClusterConfig) -> Option<String> {
    if let Trigger::SpotWarning(id) = &view.trigger {
        return Some(format!("a Spot interruption warning for {id}"));
    }
    if plan.steps.iter().any(|s| {
        s.job != JobKind::Rebalance
            && s.acts().any(|a| {
                matches!(
                    a,
                    Act::Send {
                        action: crate::action::Action::SetGroupDesired { .. }
                            | crate::action::Action::TerminateInstance { .. }
                            | crate::action::Action::SetInstanceState { .. }
                    }
                )
            })
    }) {
        return Some("this run changes the cluster's instances".into());
    }
    for g in view.groups.values() {
        let launching = g.instances.iter().filter(|m| m.lifecycle == Lifecycle::Launching).count();
        if launching > 0 {
            return Some(format!("{launching} instance(s) of {} still launching", g.name));
        }
    }
    if let Some(g) = cfg.autoscale.as_ref().and_then(|a| view.groups.get(&a.group)) {
        let youngest = view.snapshot.instances.iter().filter(|i| is_member(g, i)).map(|i| i.registered_at).max();
        if let Some(y) = youngest
            && view.now() - y < autoscale::SCALE_IN_COOLDOWN
        {
            return Some(format!(
                "{} settles for {} after an instance joins it ({} ago)",
                g.name,
                autoscale::SCALE_IN_COOLDOWN,
                view.now() - y
            ));
        }
    }
    let leaving: Vec<&str> = view
        .snapshot
        .instances
        .iter()
        .filter(|i| {
            matches!(i.attr(attr::BALLAST_DRAIN), Some(autoscale::SCALE_IN | spot::SCALE_IN | spot::SPOT_NOTICE))
        })
        .map(|i| i.ec2_instance_id.as_str())
        .collect();
    if !leaving.is_empty() {
        return Some(format!("{} instance(s) leaving ({})", leaving.len(), leaving.join(", ")));
    }
    None
}

/// Every job of `jobs` decides, in order, from `view`: the run's plan, and the jobs'
/// explanations.
pub fn decide(view: &View, cfg: &ClusterConfig, jobs: Jobs, budget: &Budget) -> (Plan, Explained) {
    let jobs = jobs.of(cfg);
    let snap = &view.snapshot;
    let mut plan = Plan::new(&snap.cluster);
    let mut ex = Explained::default();
    if !jobs.any() {
        return (plan, ex);
    }
    // 1. Recovery.
    let recovering = recovery::steps(snap);
    let mut other_booting = 0;
    if !recovering.is_empty() {
        plan.decided(
            JobKind::Recovery,
            format!(
                "{} leftover(s) of an interrupted run to put right; the other jobs decide on the next run",
                recovering.len()
            ),
            recovering.iter().map(|s| s.reason.clone()).collect(),
        );
        plan.steps.extend(recovering);
    }
    // 2. Capacity: spot-fallback, then autoscale.
    if jobs.spot_fallback
        && let Some(sc) = &cfg.spot_fallback
    {
        let (d, steps) = spot::decide(view, sc);
        other_booting = d.booting;
        plan.decided(JobKind::SpotFallback, d.decision.clone(), steps.iter().map(|s| s.reason.clone()).collect());
        plan.steps.extend(steps);
        ex.spot = Some(d);
    }
    if !plan.decisions.iter().any(|d| d.job == JobKind::Recovery) {
        let mut desired: BTreeMap<String, u32> = BTreeMap::new();
        if jobs.autoscale
            && let Some(ac) = &cfg.autoscale
        {
            let mut d = autoscale::AutoscaleDecision::default();
            let mut steps = autoscale::services(view, ac, &mut d);
            desired = d.services.iter().map(|s| (s.service.clone(), s.new_desired)).collect();
            steps.extend(autoscale::instances(view, ac, &desired, other_booting, &mut d));
            let mut details: Vec<String> = d
                .services
                .iter()
                .map(|s| format!("{}: {} → {}: {}", s.service, s.desired, s.new_desired, s.why))
                .collect();
            details.extend(d.refused.iter().map(|r| format!("refused: {r}")));
            plan.decided(JobKind::Autoscale, d.decision.clone(), details);
            plan.steps.extend(steps);
            ex.autoscale = Some(d);
        }
        // 3. Moves.
        if jobs.rebalance {
            match capacity_moving(view, &plan, cfg) {
                Some(why) => plan.decided(
                    JobKind::Rebalance,
                    format!("waits: capacity is changing ({why}); a cluster that has settled is rebalanced then"),
                    vec![],
                ),
                None => {
                    let mut rc = cfg.rebalance.clone();
                    rc.max_restarts_per_run = rc.max_restarts_per_run.min(budget.restarts);
                    // A service autoscale changes this run is left to that change.
                    if let Some(d) = &ex.autoscale {
                        rc.exclude_services.extend(
                            d.services.iter().filter(|s| s.new_desired != s.desired).map(|s| s.service.clone()),
                        );
                    }
                    // The room of every task waiting to be placed, and autoscale's buffer.
                    let mut reserve = autoscale::wanted(snap, &desired);
                    if jobs.autoscale {
                        reserve.extend(cfg.autoscale.as_ref().and_then(autoscale::buffer_spec));
                    }
                    let (p, steps) = rebalance::decide(snap, &rc, &reserve, &view.holder);
                    plan.decided(
                        JobKind::Rebalance,
                        p.summary.clone(),
                        p.skipped.iter().map(|s| format!("skipped {}: {}", s.service, s.reason)).collect(),
                    );
                    plan.rebalance = Some(p);
                    plan.steps.extend(steps);
                }
            }
        }
    }
    (plan, ex)
}

#[cfg(test)]
mod tests;
