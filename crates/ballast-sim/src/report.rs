//! What the simulation report measures (SPEC.md, "The simulation report"), accumulated as
//! the simulation runs.

use std::collections::BTreeMap;

use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_core::duration::Millis;
use ballast_core::metrics::{CovTriple, Measure, spread};
use serde::Serialize;

use crate::engine::{InstState, Sim};
use crate::scenario::Capacity;
use crate::scheduler::TState;

/// One point of the timeline behind the HTML report.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds.
    pub t: f64,
    /// Live service tasks per ACTIVE instance (EC2 id, count).
    pub per_instance: Vec<(String, u32)>,
    /// Task-count COV, percent.
    pub cov_count: f64,
    /// Availability the policy left, percent: the minimum over replica services and over every
    /// state change since the previous sample (so the chart and the table agree).
    pub availability: f64,
    /// Instances registered (ACTIVE or DRAINING).
    pub instances: u32,
    /// Tasks wanted but not placeable.
    pub unplaced: u32,
}

/// Running totals.
#[derive(Debug, Clone)]
pub struct Accounting {
    /// Replica service tasks stopped because of the policy.
    pub tasks_restarted: u64,
    /// Of the restarts, tasks stopped because the policy lowered the desired count (a surge's
    /// end, an autoscale scale-in): surplus, so never counted missing.
    pub tasks_scaled_in: u64,
    /// Daemon tasks stopped because of the policy (with the instances it drained or retired);
    /// never restarts: a daemon task is not replaced elsewhere.
    pub daemon_tasks_stopped: u64,
    /// Tasks the policy killed other than by a budgeted stop.
    pub tasks_lost: u64,
    /// Scheduled runs skipped because a run was in progress.
    pub skipped_runs: u64,
    /// Run errors of the controller (`at: error`).
    pub errors: Vec<String>,
    /// Controller invocations.
    pub runs: u64,
    /// Crash points hit.
    pub crashes: u64,
    /// API calls by operation.
    pub api: BTreeMap<String, u64>,
    /// Lower bound: the largest over the states where a run of the policy first acted.
    pub min_moves: Option<u32>,
    /// The state `min_moves` was taken from (the bound's reference for "at target").
    pub min_moves_state: Option<ballast_core::model::Snapshot>,
    /// Minimum availability, percent, over every state change.
    pub min_availability: f64,
    /// Minimum availability since the last timeline sample.
    window_availability: f64,
    /// Minimum availability per service (index = service).
    pub service_min: Vec<f64>,
    /// With `Some`, the availability after every state change (property tests).
    pub trace: Option<Vec<(Millis, f64)>>,
    /// Σ unplaced tasks × seconds.
    pub unplaced_task_seconds: f64,
    /// Σ instances × seconds.
    pub instance_seconds: f64,
    /// Σ price × hours.
    pub cost: f64,
    /// Σ (the fewest instances that can hold what runs) × seconds; see [`Sim::capacity_floor`].
    pub bound_instance_seconds: f64,
    /// Σ (the least $ per hour that can hold what runs) × hours.
    pub bound_cost: f64,
    /// Σ (first-fit-decreasing instances for the demand set) × seconds; see [`Sim::capacity_ffd`].
    pub ffd_instance_seconds: f64,
    /// The bound's last computation: (its key, instances).
    bound_cache: Option<(Vec<u32>, u32)>,
    /// (time, COV of the configured measure).
    pub cov_samples: Vec<(Millis, f64)>,
    /// Timeline for charts.
    pub timeline: Vec<Sample>,
    measure: Measure,
    /// The configured threshold.
    pub threshold: f64,
    /// The work the exact restart bound may spend (`planner::exact::balanced_bound`).
    pub bound_work: u64,
    /// Whether to work out the scheduler bound too (`RunOptions::scheduler_bound`).
    pub scheduler_bound: bool,
    last_sample: Option<Millis>,
    last_timeline: Option<Millis>,
}

impl Default for Accounting {
    fn default() -> Self {
        Accounting {
            tasks_restarted: 0,
            tasks_scaled_in: 0,
            daemon_tasks_stopped: 0,
            tasks_lost: 0,
            skipped_runs: 0,
            errors: vec![],
            runs: 0,
            crashes: 0,
            api: BTreeMap::new(),
            min_moves: None,
            min_moves_state: None,
            min_availability: 100.0,
            window_availability: 100.0,
            service_min: vec![],
            trace: None,
            unplaced_task_seconds: 0.0,
            bound_instance_seconds: 0.0,
            bound_cost: 0.0,
            ffd_instance_seconds: 0.0,
            bound_cache: None,
            instance_seconds: 0.0,
            cost: 0.0,
            cov_samples: vec![],
            timeline: vec![],
            measure: Measure::Count,
            threshold: 25.0,
            bound_work: ballast_core::planner::exact::DEFAULT_BUDGET,
            scheduler_bound: false,
            last_sample: None,
            last_timeline: None,
        }
    }
}

/// The `api_calls` field.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiCalls {
    /// All calls.
    pub total: u64,
    /// Per operation.
    pub by_operation: BTreeMap<String, u64>,
}

/// Capacity over the run: a true lower bound, or an estimate (docs/simulator.md).
#[derive(Debug, Clone, Serialize)]
pub struct CapacityBound {
    /// Instance hours.
    pub instance_hours: f64,
    /// $, at the shape's on-demand price.
    pub cost: f64,
}

/// One replica service's availability over the run, beside its health budget.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceAvailability {
    /// The lowest availability the policy left it, percent.
    pub min_percent: f64,
    /// Its minimumHealthyPercent: the floor a rebalancer must keep it at.
    pub budget_percent: u32,
}

/// One policy's line of the simulation report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Policy.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Replica service tasks stopped because of the policy (daemon tasks are not restarts).
    pub tasks_restarted: u64,
    /// Of the restarts, tasks stopped because the policy lowered the desired count (a surge's
    /// end, an autoscale scale-in).
    pub tasks_scaled_in: u64,
    /// Daemon tasks stopped because of the policy (with instances it drained or retired).
    pub daemon_tasks_stopped: u64,
    /// Lower bound on restarts from the states where the policy acted (0 if it never did).
    pub min_moves: u32,
    /// The fewest restarts from the same state to *balanced*: every spread service at its
    /// target and the count COV within the threshold (`ballast_core::planner::exact`; at
    /// least `min_moves`; 0 if the policy never acted).
    pub min_moves_balanced: u32,
    /// Whether the search proved `min_moves_balanced` exact (a sequence that long exists)
    /// rather than stopping at its work budget with a weaker bound.
    pub min_moves_balanced_exact: bool,
    /// Restarts ÷ the bound of what the run reached: `min_moves_balanced` when it ended
    /// balanced as that bound defines it, `min_moves` when it ended at the strategy targets
    /// only; `null` when it reached neither or the bound is 0.
    pub restarts_over_bound: Option<f64>,
    /// The fewest restarts from the same state to *balanced* for a policy that restarts only
    /// through the scheduler, ECS placing every new task (`planner::exact::scheduler_bound`:
    /// at least `min_moves_balanced`; not a bound for policies that drain instances).
    /// `null` unless asked for (`simulate --scheduler-bound`) and the policy acted.
    pub min_moves_scheduled: Option<u32>,
    /// Whether the search proved `min_moves_scheduled` exact.
    pub min_moves_scheduled_exact: bool,
    /// Restarts ÷ `min_moves_scheduled` when the run ended balanced; `null` otherwise.
    pub restarts_over_scheduled_bound: Option<f64>,
    /// COV at the end over ACTIVE instances.
    pub final_cov_percent: CovTriple,
    /// Seconds from the last scenario event until balanced for good (the count COV at or
    /// below `cov_threshold_percent` from then on).
    pub time_to_balanced_s: Option<f64>,
    /// The threshold "balanced" is judged by (the configured `cov_percent`).
    pub cov_threshold_percent: f64,
    /// Availability the policy cost, percent.
    pub min_availability_percent: f64,
    /// Per replica service: its lowest availability and its health budget.
    pub service_availability: BTreeMap<String, ServiceAvailability>,
    /// Σ unplaced tasks × seconds.
    pub unplaced_task_seconds: f64,
    /// Instance hours.
    pub instance_hours: f64,
    /// $.
    pub cost: f64,
    /// The capacity what this policy ran needs at least, over the run: a true lower bound
    /// ([`Sim::capacity_floor`]; no policy's `instance_hours` or `cost` is ever below it).
    pub capacity_bound: CapacityBound,
    /// First-fit-decreasing instances for the demand this policy set (an estimate of what it
    /// needs, not a bound; [`Sim::capacity_ffd`]).
    pub capacity_ffd: CapacityBound,
    /// API calls.
    pub api_calls: ApiCalls,
    /// Instances the policy left DRAINING.
    pub left_draining: u64,
    /// Tasks lost.
    pub tasks_lost: u64,
    /// Controller invocations.
    pub runs: u64,
    /// Scheduled runs skipped because one was in progress.
    pub skipped_runs: u64,
    /// The run errors the policy's controller met (`at: error`), empty when none.
    pub errors: Vec<String>,
}

impl Sim {
    pub(crate) fn account_start(&mut self) {
        let env = EnvSettings::default();
        if let Ok(cfg) = validate_cluster(&self.sc.controller.config, &env) {
            self.acct.measure = cfg.rebalance.measure;
            self.acct.threshold = cfg.rebalance.cov_percent;
        }
        self.account_batch();
    }

    pub(crate) fn account_advance(&mut self, t: Millis) {
        // Only the scenario's own span counts (a run may outlast it).
        let dt = (t.min(self.sc.duration) - self.now.min(self.sc.duration)).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let unplaced: u32 = self.svcs.iter().map(|s| s.unplaced).sum();
        self.acct.unplaced_task_seconds += unplaced as f64 * dt;
        let (n, dollars) = self.capacity_floor();
        self.acct.bound_instance_seconds += n as f64 * dt;
        self.acct.bound_cost += dollars * dt / 3600.0;
        let ffd = self.capacity_ffd();
        self.acct.ffd_instance_seconds += ffd as f64 * dt;
        for i in self.insts.iter().filter(|i| i.state != InstState::Gone) {
            self.acct.instance_seconds += dt;
            self.acct.cost += i.price * dt / 3600.0;
        }
    }

    /// Service `s`'s availability now (SPEC.md): 100 × (1 − tasks missing because of the
    /// policy ÷ the desired count the scenario gave it); 100 for daemons and services the
    /// policy costs nothing.
    pub fn service_availability(&self, s: usize) -> f64 {
        let svc = &self.svcs[s];
        let sd = svc.scenario_desired;
        if svc.daemon || svc.policy_missing == 0 || sd == 0 {
            return 100.0;
        }
        100.0 * (1.0 - svc.policy_missing.min(sd) as f64 / sd as f64)
    }

    /// The minimum availability over replica services now.
    pub fn availability_now(&self) -> f64 {
        (0..self.svcs.len()).map(|s| self.service_availability(s)).fold(100.0, f64::min)
    }

    /// Accounts service `s`'s availability after a change to what it misses or to its
    /// denominator. Availability only falls when a task the policy caused to stop stops
    /// running, or when the scenario lowers the desired count while tasks are missing, and both
    /// call this: the minimum over every state change is exact, however soon a replacement is
    /// healthy.
    pub(crate) fn note_availability(&mut self, s: usize) {
        let a = self.service_availability(s);
        if self.acct.service_min.len() < self.svcs.len() {
            self.acct.service_min.resize(self.svcs.len(), 100.0);
        }
        self.acct.service_min[s] = self.acct.service_min[s].min(a);
        self.acct.min_availability = self.acct.min_availability.min(a);
        self.acct.window_availability = self.acct.window_availability.min(a);
        self.trace_change();
    }

    /// With tracing on, records the availability recomputed over every service (called after
    /// every state change; the property tests compare its minimum with the report's).
    pub(crate) fn trace_change(&mut self) {
        if self.acct.trace.is_some() {
            let (t, a) = (self.now, self.availability_now());
            if let Some(tr) = self.acct.trace.as_mut() {
                tr.push((t, a));
            }
        }
    }

    pub(crate) fn account_batch(&mut self) {
        self.trace_change();
        if self.acct.last_sample.is_none_or(|l| self.now >= l + Millis::secs(10)) {
            self.acct.last_sample = Some(self.now);
            let c = self.cov_of(self.acct.measure);
            self.acct.cov_samples.push((self.now, c));
        }
        if self.acct.last_timeline.is_none_or(|l| self.now >= l + Millis::secs(60)) {
            self.sample_timeline();
        }
    }

    /// The last samples, at the end of the run (the COV series and the timeline).
    pub(crate) fn final_samples(&mut self) {
        let c = self.cov_of(self.acct.measure);
        self.acct.cov_samples.push((self.now, c));
        self.sample_timeline();
    }

    /// Adds a timeline sample now; its availability is the minimum since the previous one.
    pub(crate) fn sample_timeline(&mut self) {
        self.acct.last_timeline = Some(self.now);
        let per_instance: Vec<(String, u32)> = (0..self.insts.len())
            .filter(|&n| self.insts[n].state == InstState::Active)
            .map(|n| (self.insts[n].ec2_id.clone(), self.movable_count(n)))
            .collect();
        let now = self.availability_now();
        let sample = Sample {
            t: self.now.as_secs_f64(),
            per_instance,
            cov_count: self.cov_of(Measure::Count),
            availability: round2(self.acct.window_availability.min(now)),
            instances: self.insts.iter().filter(|i| matches!(i.state, InstState::Active | InstState::Draining)).count()
                as u32,
            unplaced: self.svcs.iter().map(|s| s.unplaced).sum(),
        };
        self.acct.window_availability = now;
        self.acct.timeline.push(sample);
    }

    fn movable_count(&self, n: usize) -> u32 {
        self.node_live[n]
            .iter()
            .filter(|&&t| {
                let task = &self.tasks[t];
                matches!(task.state, TState::Pending | TState::Running)
                    && task.service.is_some_and(|s| !self.svcs[s].daemon)
            })
            .count() as u32
    }

    /// COV of a measure over ACTIVE instances, straight from the simulator's state (service
    /// tasks only: daemon and standalone tasks are left out, as by default).
    pub fn cov_of(&self, m: Measure) -> f64 {
        let mut vals = Vec::new();
        for n in 0..self.insts.len() {
            if self.insts[n].state != InstState::Active {
                continue;
            }
            let node = &self.cs.nodes[n];
            let (rc, rm) = (node.registered.cpu.max(1) as f64, node.registered.memory.max(1) as f64);
            let mut v = 0.0;
            for &t in &self.node_live[n] {
                let task = &self.tasks[t];
                let Some(s) = task.service else { continue };
                let svc = &self.svcs[s];
                if svc.daemon || !matches!(task.state, TState::Pending | TState::Running) {
                    continue;
                }
                let (c, mem) = (svc.spec.cpu as f64, svc.spec.memory as f64);
                v += match m {
                    Measure::Count => 1024.0 / rc,
                    Measure::CpuReserved => c / rc,
                    Measure::MemoryReserved => mem / rm,
                    Measure::CpuUtilized => c * svc.utilization.0 / rc,
                    Measure::MemoryUtilized => mem * svc.utilization.1 / rm,
                };
            }
            vals.push(v);
        }
        spread(&vals).cov_percent
    }

    /// The bound's instance shape: the first on-demand group's first instance type (else the
    /// first group's), with its on-demand price.
    fn bound_shape(&self) -> Option<(i64, i64, f64)> {
        let g = self.sc.groups.iter().find(|g| g.capacity != Capacity::Spot).or(self.sc.groups.first())?;
        let t = self.sc.catalogue.get(g.instance_types.first()?)?;
        Some((t.cpu, t.memory, t.price))
    }

    /// A true lower bound on the capacity in use now: every live task (pending or running,
    /// daemons and standalone tasks included) sits on a registered instance, and no instance
    /// registers more than the largest CPU (or memory) of any type the groups launch, so at
    /// least ⌈reserved ÷ largest⌉ instances are up, for CPU and for memory; likewise no
    /// instance costs less per CPU unit (or MiB) than the cheapest type a group launches, at its
    /// Spot price in a Spot group. Returns (instances, $ per hour). Instances that boot, drain
    /// or sit idle only add to what a policy uses, so no policy is ever below it
    /// (docs/simulator.md, "Capacity bounds"; property-tested over every policy).
    pub fn capacity_floor(&self) -> (u32, f64) {
        let (mut max_cpu, mut max_mem, mut per_cpu, mut per_mem) = (0i64, 0i64, f64::INFINITY, f64::INFINITY);
        for g in &self.sc.groups {
            for t in g.instance_types.iter().filter_map(|n| self.sc.catalogue.get(n)) {
                let price = if g.capacity == Capacity::Spot { t.spot_price } else { t.price };
                max_cpu = max_cpu.max(t.cpu);
                max_mem = max_mem.max(t.memory);
                per_cpu = per_cpu.min(price / t.cpu.max(1) as f64);
                per_mem = per_mem.min(price / t.memory.max(1) as f64);
            }
        }
        let (c, m) = (self.reserved.cpu.max(0), self.reserved.memory.max(0));
        let need = |r: i64, cap: i64| if cap <= 0 { 0 } else { (r as u64).div_ceil(cap as u64) as u32 };
        let n = need(c, max_cpu).max(need(m, max_mem));
        let dollars = if per_cpu.is_finite() { (c as f64 * per_cpu).max(m as f64 * per_mem) } else { 0.0 };
        (n, dollars)
    }

    /// An estimate of the instances the demand the policy set needs now (not a bound): every
    /// replica service's desired count and the live standalone tasks, packed first-fit
    /// decreasing by CPU and memory into instances of the first on-demand group's first type,
    /// each also holding one task of every daemon. Constraints, ports, spread and boot time
    /// are ignored; a policy that leaves tasks unplaced, or packs better, uses less.
    pub fn capacity_ffd(&mut self) -> u32 {
        let Some((cpu, mem, _)) = self.bound_shape() else { return 0 };
        let standalone = self.standalone_live;
        let mut key: Vec<u32> = self.svcs.iter().map(|s| s.desired).collect();
        key.push(standalone);
        if let Some((k, n)) = &self.acct.bound_cache
            && *k == key
        {
            return *n;
        }
        let (dc, dm) =
            self.svcs.iter().filter(|s| s.daemon).fold((0, 0), |a, s| (a.0 + s.spec.cpu, a.1 + s.spec.memory));
        let (bc, bm) = (cpu - dc, mem - dm);
        // The items as runs of one shape, in the order first fit takes them: services in
        // order (each its desired count), then standalone tasks; merged where consecutive.
        let mut runs: Vec<((i64, i64), u64)> = Vec::new();
        let mut add = |shape: (i64, i64), n: u64| match runs.last_mut() {
            Some((s, c)) if *s == shape => *c += n,
            _ if n > 0 => runs.push((shape, n)),
            _ => {}
        };
        for s in self.svcs.iter().filter(|s| !s.daemon) {
            add((s.spec.cpu, s.spec.memory), u64::from(s.desired));
        }
        // Live tasks in the order they started (as a scan of every task ever would take them).
        let mut live: Vec<usize> = self.node_live.iter().flatten().copied().collect();
        live.sort_unstable();
        for t in live.iter().map(|&t| &self.tasks[t]).filter(|t| matches!(t.state, TState::Running | TState::Pending)) {
            if let Some(k) = t.standalone {
                let sp = &self.standalone_specs[k];
                add((sp.cpu, sp.memory), 1);
            }
        }
        let weight = |i: &(i64, i64)| (i.0 as f64 / bc.max(1) as f64).max(i.1 as f64 / bm.max(1) as f64);
        // Stable, as the item-by-item sort was: equal weights keep their order.
        runs.sort_by(|a, b| weight(&b.0).total_cmp(&weight(&a.0)));
        let mut bins: Vec<(i64, i64)> = Vec::new();
        // First fit, exactly, a run at a time: bins only shrink, so a bin that cannot take an
        // item of some shape never will; each shape keeps the index of the first bin that
        // still might, and a run fills each bin with as many of its items as fit (what placing
        // them one by one would do) in O(bins + runs), not O(tasks).
        let room = |b: (i64, i64), it: (i64, i64)| -> u64 {
            let per = |free: i64, need: i64| if need <= 0 { u64::MAX } else { (free.max(0) / need) as u64 };
            per(b.0, it.0).min(per(b.1, it.1))
        };
        let mut cursors: Vec<((i64, i64), usize)> = Vec::new();
        for (it, mut left) in runs {
            if it.0 > bc || it.1 > bm {
                continue; // fits no instance of the shape: not capacity any policy could add
            }
            let c = match cursors.iter().position(|(shape, _)| *shape == it) {
                Some(c) => c,
                None => {
                    cursors.push((it, 0));
                    cursors.len() - 1
                }
            };
            let mut k = cursors[c].1;
            while left > 0 {
                if k == bins.len() {
                    bins.push((bc, bm));
                }
                let fit = room(bins[k], it);
                let take = fit.min(left);
                bins[k].0 -= it.0 * take as i64;
                bins[k].1 -= it.1 * take as i64;
                left -= take;
                if take == fit {
                    k += 1;
                }
            }
            cursors[c].1 = k;
        }
        let n = bins.len() as u32;
        self.acct.bound_cache = Some((key, n));
        n
    }

    /// The balanced bounds from the state `min_moves` was taken in, and restarts ÷ the bound
    /// of what the run reached (see [`Report::restarts_over_bound`]).
    fn restart_bounds(&self) -> RestartBounds {
        use ballast_core::planner::{exact, objective::at_target};
        let Some(reference) = &self.acct.min_moves_state else { return RestartBounds::default() };
        let lb = self.acct.min_moves.unwrap_or(0);
        let tight = exact::balanced_bound(reference, self.acct.threshold, self.acct.bound_work)
            .map(|t| exact::Tight { bound: t.bound.max(lb), exact: t.exact && t.bound >= lb });
        // Every sequence the scheduler bound searches is one the balanced bound searches, so
        // the larger of the two is the scheduler bound.
        let floor = tight.map_or(lb, |x| x.bound);
        let scheduled = self
            .acct
            .scheduler_bound
            .then(|| exact::scheduler_bound(reference, self.acct.threshold, self.acct.bound_work))
            .flatten()
            .map(|t| exact::Tight { bound: t.bound.max(floor), exact: t.exact && t.bound >= floor });
        let now = self.snapshot();
        let active = |s: &ballast_core::model::Snapshot| -> Vec<String> {
            s.instances
                .iter()
                .filter(|i| i.status == ballast_core::model::InstanceStatus::Active)
                .map(|i| i.arn.clone())
                .collect()
        };
        let at = at_target(reference, &now);
        // Balanced as the bounds define it: at the targets, on the same ACTIVE instances, the
        // count COV within the threshold, and settled (ECS has placed every task it can).
        let balanced = at
            && active(reference) == active(&now)
            && self.cov_of(Measure::Count) <= self.acct.threshold + 1e-9
            && exact::settled_snapshot(&now);
        let bound = match (balanced, at) {
            (true, _) => tight.map_or(lb, |t| t.bound),
            (false, true) => lb,
            _ => 0,
        };
        let ratio = |bound: u32| {
            (bound > 0).then(|| (self.acct.tasks_restarted as f64 / bound as f64 * 1000.0).round() / 1000.0)
        };
        RestartBounds {
            balanced: tight,
            over: ratio(bound),
            scheduled,
            over_scheduled: scheduled.filter(|_| balanced).and_then(|t| ratio(t.bound)),
        }
    }

    /// The report line for this run.
    pub fn report(&self, policy: &str) -> Report {
        let last_event = self.sc.last_event_at();
        let samples = &self.acct.cov_samples;
        let time_to_balanced_s = match samples.iter().rposition(|(_, c)| *c > self.acct.threshold + 1e-9) {
            None => Some(0.0),
            Some(i) if i + 1 == samples.len() => None,
            Some(i) => Some((samples[i + 1].0 - last_event).as_secs_f64()),
        };
        let left_draining =
            self.insts.iter().filter(|i| i.state == InstState::Draining && i.drained_by_policy).count() as u64;
        let bounds = self.restart_bounds();
        let (tight, restarts_over_bound) = (bounds.balanced, bounds.over);
        Report {
            scenario: self.sc.name.clone(),
            policy: policy.to_string(),
            seed: self.sc.seed,
            tasks_restarted: self.acct.tasks_restarted,
            tasks_scaled_in: self.acct.tasks_scaled_in,
            daemon_tasks_stopped: self.acct.daemon_tasks_stopped,
            min_moves: self.acct.min_moves.unwrap_or(0),
            min_moves_balanced: tight.map_or(self.acct.min_moves.unwrap_or(0), |t| t.bound),
            min_moves_balanced_exact: tight.is_some_and(|t| t.exact),
            restarts_over_bound,
            min_moves_scheduled: bounds.scheduled.map(|t| t.bound),
            min_moves_scheduled_exact: bounds.scheduled.is_some_and(|t| t.exact),
            restarts_over_scheduled_bound: bounds.over_scheduled,
            final_cov_percent: CovTriple {
                count: round2(self.cov_of(Measure::Count)),
                cpu: round2(self.cov_of(Measure::CpuReserved)),
                memory: round2(self.cov_of(Measure::MemoryReserved)),
            },
            time_to_balanced_s,
            cov_threshold_percent: self.acct.threshold,
            min_availability_percent: round2(self.acct.min_availability),
            service_availability: self
                .svcs
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.daemon)
                .map(|(i, s)| {
                    let min = self.acct.service_min.get(i).copied().unwrap_or(100.0);
                    (s.name.clone(), ServiceAvailability { min_percent: round2(min), budget_percent: s.min_healthy })
                })
                .collect(),
            unplaced_task_seconds: round2(self.acct.unplaced_task_seconds),
            instance_hours: round2(self.acct.instance_seconds / 3600.0),
            // Rounded down, so that a rounded figure never shows a policy below its bound.
            capacity_bound: CapacityBound {
                instance_hours: (self.acct.bound_instance_seconds / 36.0).floor() / 100.0,
                cost: (self.acct.bound_cost * 10000.0).floor() / 10000.0,
            },
            capacity_ffd: CapacityBound {
                instance_hours: round2(self.acct.ffd_instance_seconds / 3600.0),
                cost: self
                    .bound_shape()
                    .map_or(0.0, |(_, _, p)| (self.acct.ffd_instance_seconds / 3600.0 * p * 10000.0).round() / 10000.0),
            },
            cost: (self.acct.cost * 10000.0).round() / 10000.0,
            api_calls: ApiCalls { total: self.acct.api.values().sum(), by_operation: self.acct.api.clone() },
            left_draining,
            tasks_lost: self.acct.tasks_lost,
            runs: self.acct.runs,
            skipped_runs: self.acct.skipped_runs,
            errors: self.acct.errors.clone(),
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// What [`Sim::restart_bounds`] works out.
#[derive(Default)]
struct RestartBounds {
    balanced: Option<ballast_core::planner::exact::Tight>,
    over: Option<f64>,
    scheduled: Option<ballast_core::planner::exact::Tight>,
    over_scheduled: Option<f64>,
}
