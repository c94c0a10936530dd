//! A run's plan as data: the steps every job decided, in the order they run, decided once from
//! the [`crate::view::View`]. The executor carries them out and decides nothing: it checks
//! each step's guard on a fresh read, sends the actions, waits, and runs what comes after.
//! The dry run renders this same value.
//!
//! A [`Step`] is one unit of work of one job (a surge, a stop, a drain, a scale-out, a
//! termination), with its phases: a [`Guard`] checked on a fresh read before the phase's
//! actions (failing, the phase's `otherwise` actions run instead and the step ends), the
//! actions, and an optional [`Wait`] (timing out, the phase's `on_timeout` actions run and the
//! step ends). The step's `finally` actions run whatever happened (after a call failed for
//! good, once its `on_error` actions went through). Actions are API calls
//! ([`Act::Send`]) or the two that need the tasks of the moment: protecting every task of a
//! service but its victims, and clearing exactly the protection the step set.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::action::Action;
use crate::backend::GroupInfo;
use crate::duration::Millis;
use crate::model::{ContainerInstance, InstanceStatus, ServiceState, Snapshot, Task};
use crate::planner::Move;

/// The job a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Repairing what an interrupted run left.
    Recovery,
    /// Spot shortfall cover and give-back.
    SpotFallback,
    /// Service desired counts and the Auto Scaling group.
    Autoscale,
    /// Task moves toward each service's placement target.
    Rebalance,
}

impl JobKind {
    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Recovery => "recovery",
            JobKind::SpotFallback => "spot-fallback",
            JobKind::Autoscale => "autoscale",
            JobKind::Rebalance => "rebalance",
        }
    }
}

/// One thing a phase does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "act", rename_all = "kebab-case")]
pub enum Act {
    /// One API call.
    Send {
        /// The action.
        action: Action,
    },
    /// Scale-in protection for `minutes` on every live task of `service` except `victims` and
    /// except tasks someone else protected (their protection is never touched); the executor
    /// remembers exactly which tasks it protected.
    ProtectAllBut {
        /// The service.
        service: String,
        /// The tasks left unprotected (ECS's scale-in takes these).
        victims: Vec<String>,
        /// Expiry.
        minutes: u32,
    },
    /// Clears the protection this step set, and only that.
    ClearProtection {
        /// The service.
        service: String,
    },
}

impl Act {
    /// An API call.
    pub fn send(action: Action) -> Act {
        Act::Send { action }
    }
}

/// What a guard or a wait needs to read fresh.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Read {
    /// One service and its live tasks (DescribeServices, ListTasks, DescribeTasks).
    Service(String),
    /// One container instance (DescribeContainerInstances).
    Instance(String),
    /// One Auto Scaling group (DescribeAutoScalingGroups).
    Group(String),
    /// The scale-in protection of one service's live tasks (GetTaskProtection, 10 tasks a
    /// call), set on the tasks of its [`Read::Service`] read (which it implies).
    Protection(String),
}

/// What the executor read for a guard or a wait (`None`: the resource is gone).
#[derive(Debug, Clone, Default)]
pub struct Fresh {
    /// Services by name.
    pub services: BTreeMap<String, Option<ServiceState>>,
    /// Container instances by ARN.
    pub instances: BTreeMap<String, Option<ContainerInstance>>,
    /// Groups by name.
    pub groups: BTreeMap<String, Option<GroupInfo>>,
    /// Tasks' scale-in protection, for the services a [`Read::Protection`] named (also set
    /// on those services' tasks).
    pub protection: BTreeMap<String, crate::backend::TaskProtection>,
}

impl Fresh {
    fn service(&self, name: &str) -> Result<&ServiceState, String> {
        self.services.get(name).and_then(Option::as_ref).ok_or_else(|| format!("service {name} is gone"))
    }
}

/// A condition checked on a fresh read before a phase's actions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "guard", rename_all = "kebab-case")]
pub enum Guard {
    /// Nothing to check.
    Always,
    /// Every one of these.
    All {
        /// The guards.
        all: Vec<Guard>,
    },
    /// The service is as the plan saw it: desired `desired`, one deployment, every task
    /// placed.
    ServiceSteady {
        /// The service.
        service: String,
        /// Its desired count when the plan was made.
        desired: u32,
    },
    /// The service's desired count is still `desired` (nobody changed it since the plan).
    ServiceDesired {
        /// The service.
        service: String,
        /// Its desired count when the plan was made.
        desired: u32,
    },
    /// Each of these tasks is live, running, healthy and protected by nobody.
    Movable {
        /// The service.
        service: String,
        /// The tasks.
        tasks: Vec<String>,
    },
    /// The service has more healthy tasks than its minimumHealthyPercent requires.
    AboveMinHealthy {
        /// The service.
        service: String,
    },
    /// Letting `victims` go leaves the service's spread (`levels`) more even than it was when
    /// the step began (the new tasks where ECS actually put them); for a move that only
    /// evens out the cluster's measure (`neutral`), no less even.
    Improves {
        /// The service.
        service: String,
        /// The tasks to let go.
        victims: Vec<String>,
        /// Its spread levels.
        levels: Vec<String>,
        /// The move leaves the spread as it is, by plan.
        neutral: bool,
    },
    /// The instance is registered with this status.
    InstanceIs {
        /// Container instance ARN.
        arn: String,
        /// Status.
        status: InstanceStatus,
    },
    /// The instance runs no task at all.
    InstanceEmpty {
        /// Container instance ARN.
        arn: String,
    },
    /// The group's desired capacity is still `desired`.
    GroupDesired {
        /// The group.
        group: String,
        /// Its desired capacity when the plan was made.
        desired: u32,
    },
}

impl Guard {
    /// All of `guards` (flattening `Always`).
    pub fn all(guards: Vec<Guard>) -> Guard {
        let mut v: Vec<Guard> = guards.into_iter().filter(|g| *g != Guard::Always).collect();
        match v.len() {
            0 => Guard::Always,
            1 => v.pop().expect("one"),
            _ => Guard::All { all: v },
        }
    }

    /// What checking it reads.
    pub fn reads(&self, out: &mut BTreeSet<Read>) {
        match self {
            Guard::Always => {}
            Guard::All { all } => all.iter().for_each(|g| g.reads(out)),
            Guard::Movable { service, .. } => {
                out.insert(Read::Service(service.clone()));
                out.insert(Read::Protection(service.clone()));
            }
            Guard::ServiceSteady { service, .. }
            | Guard::ServiceDesired { service, .. }
            | Guard::AboveMinHealthy { service }
            | Guard::Improves { service, .. } => {
                out.insert(Read::Service(service.clone()));
            }
            Guard::InstanceIs { arn, .. } | Guard::InstanceEmpty { arn } => {
                out.insert(Read::Instance(arn.clone()));
            }
            Guard::GroupDesired { group, .. } => {
                out.insert(Read::Group(group.clone()));
            }
        }
    }

    /// Checks it on a fresh read; `Err` says why it does not hold. `view` is the snapshot
    /// the plan was made from (instance attributes for spread values); `baseline` the
    /// service's tasks when the step began.
    pub fn check(&self, fresh: &Fresh, view: &Snapshot, baseline: &[Task]) -> Result<(), String> {
        match self {
            Guard::Always => Ok(()),
            Guard::All { all } => all.iter().try_for_each(|g| g.check(fresh, view, baseline)),
            Guard::ServiceSteady { service, desired } => {
                let s = fresh.service(service)?;
                if s.service.desired != *desired {
                    return Err(format!("{service}'s desired count is {} now, not {desired}", s.service.desired));
                }
                if s.service.deployments.len() > 1 {
                    return Err(format!("{service} has a deployment in progress"));
                }
                if s.tasks.len() as u32 != *desired || s.healthy() < *desired {
                    return Err(format!("{service} runs {} healthy of {desired} desired", s.healthy()));
                }
                Ok(())
            }
            Guard::ServiceDesired { service, desired } => {
                let s = fresh.service(service)?;
                if s.service.desired != *desired {
                    return Err(format!("{service}'s desired count changed to {} since the plan", s.service.desired));
                }
                Ok(())
            }
            Guard::Movable { service, tasks } => {
                let s = fresh.service(service)?;
                for arn in tasks {
                    match s.tasks.iter().find(|t| &t.arn == arn) {
                        None => return Err(format!("task {} is gone", crate::model::short_id(arn))),
                        Some(t) if t.protected => {
                            return Err(format!("task {} has scale-in protection", crate::model::short_id(arn)));
                        }
                        Some(t) if !t.healthy => {
                            return Err(format!("task {} is not healthy", crate::model::short_id(arn)));
                        }
                        Some(_) => {}
                    }
                }
                Ok(())
            }
            Guard::AboveMinHealthy { service } => {
                let s = fresh.service(service)?;
                let min = s.service.min_healthy_tasks();
                if s.healthy() <= min {
                    return Err(format!("{service} has {} healthy task(s), its budget's floor is {min}", s.healthy()));
                }
                Ok(())
            }
            Guard::Improves { service, victims, levels, neutral } => {
                let s = fresh.service(service)?;
                let before = spread_score(view, baseline.iter().map(|t| t.instance_arn.as_str()), levels);
                let after = spread_score(
                    view,
                    s.tasks.iter().filter(|t| !victims.contains(&t.arn)).map(|t| t.instance_arn.as_str()),
                    levels,
                );
                if after < before || (*neutral && after <= before) {
                    Ok(())
                } else {
                    Err(format!(
                        "with the new tasks where ECS put them, letting the victims go would not even out {service}"
                    ))
                }
            }
            Guard::InstanceIs { arn, status } => match fresh.instances.get(arn).and_then(Option::as_ref) {
                Some(i) if i.status == *status => Ok(()),
                Some(i) => Err(format!("{} is {}, not {}", i.ec2_instance_id, i.status.as_str(), status.as_str())),
                None => Err(format!("{} is gone", crate::model::short_id(arn))),
            },
            Guard::InstanceEmpty { arn } => match fresh.instances.get(arn).and_then(Option::as_ref) {
                Some(i) if i.running_tasks == 0 && i.pending_tasks == 0 => Ok(()),
                Some(i) => Err(format!("{} still runs {} task(s)", i.ec2_instance_id, i.running_tasks)),
                None => Err(format!("{} is gone", crate::model::short_id(arn))),
            },
            Guard::GroupDesired { group, desired } => match fresh.groups.get(group).and_then(Option::as_ref) {
                Some(g) if g.desired == *desired => Ok(()),
                Some(g) => Err(format!("{group}'s desired capacity is {} now, not {desired}", g.desired)),
                None => Err(format!("group {group} is gone")),
            },
        }
    }
}

/// Per spread level, the sum over values of the squared task count (lower is more even), for
/// tasks on the given instances; values come from `view`'s instances (an instance unknown to
/// it is its own value).
pub fn spread_score<'a>(view: &Snapshot, tasks_on: impl Iterator<Item = &'a str>, levels: &[String]) -> Vec<i64> {
    let arns: Vec<&str> = tasks_on.collect();
    // Instances by ARN, once (not a scan of the view per task: 5,000 tasks over 2,000
    // instances); only when a level needs an attribute.
    let by_arn: std::collections::HashMap<&str, &crate::model::ContainerInstance> =
        if levels.iter().any(|f| f != "instanceId" && f != "host") {
            view.instances.iter().map(|i| (i.arn.as_str(), i)).collect()
        } else {
            Default::default()
        };
    levels
        .iter()
        .map(|f| {
            let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
            for a in &arns {
                let v = match (f.as_str(), by_arn.get(a)) {
                    ("instanceId" | "host", _) | (_, None) => a,
                    (field, Some(i)) => {
                        field.strip_prefix("attribute:").and_then(|k| i.attributes.get(k)).map_or("", String::as_str)
                    }
                };
                *counts.entry(v).or_default() += 1;
            }
            counts.values().map(|c| c * c).sum()
        })
        .collect()
}

/// What a phase waits for after its actions, polling fresh reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "wait", rename_all = "kebab-case")]
pub enum Wait {
    /// `count` tasks of the service that were not there when the step began are healthy.
    NewTasksHealthy {
        /// The service.
        service: String,
        /// How many.
        count: u32,
        /// Give up after.
        timeout: Millis,
    },
    /// None of these tasks is live any more.
    TasksGone {
        /// The service.
        service: String,
        /// The tasks.
        tasks: Vec<String>,
        /// Give up after.
        timeout: Millis,
    },
    /// The service runs its desired count healthy, with one deployment.
    ServiceWhole {
        /// The service.
        service: String,
        /// Give up after.
        timeout: Millis,
    },
    /// The instance's live tasks are at most `max` (or it is gone).
    InstanceAtMost {
        /// Container instance ARN.
        arn: String,
        /// The load to reach (tasks).
        max: f64,
        /// Poll interval.
        poll: Millis,
        /// Give up after.
        timeout: Millis,
    },
    /// Let time pass.
    Sleep {
        /// How long.
        time: Millis,
    },
}

impl Wait {
    /// The longest it waits.
    pub fn timeout(&self) -> Millis {
        match self {
            Wait::NewTasksHealthy { timeout, .. }
            | Wait::TasksGone { timeout, .. }
            | Wait::ServiceWhole { timeout, .. }
            | Wait::InstanceAtMost { timeout, .. } => *timeout,
            Wait::Sleep { time } => *time,
        }
    }

    /// How often it reads.
    pub fn poll(&self) -> Millis {
        match self {
            Wait::NewTasksHealthy { .. } | Wait::ServiceWhole { .. } => Millis::secs(10),
            Wait::TasksGone { .. } => Millis::secs(5),
            Wait::InstanceAtMost { poll, .. } => *poll,
            Wait::Sleep { time } => *time,
        }
    }

    /// What a poll reads.
    pub fn reads(&self, out: &mut BTreeSet<Read>) {
        match self {
            Wait::NewTasksHealthy { service, .. }
            | Wait::TasksGone { service, .. }
            | Wait::ServiceWhole { service, .. } => {
                out.insert(Read::Service(service.clone()));
            }
            Wait::InstanceAtMost { arn, .. } => {
                out.insert(Read::Instance(arn.clone()));
            }
            Wait::Sleep { .. } => {}
        }
    }

    /// Whether it is over on this read; `baseline` the service's tasks when the step began.
    pub fn done(&self, fresh: &Fresh, baseline: &[Task]) -> bool {
        match self {
            Wait::NewTasksHealthy { service, count, .. } => fresh.service(service).is_ok_and(|s| {
                // A service may run 1,000s of tasks: the baseline as a set, not a scan.
                let old: std::collections::HashSet<&str> = baseline.iter().map(|b| b.arn.as_str()).collect();
                s.tasks.iter().filter(|t| t.healthy && !old.contains(t.arn.as_str())).count() as u32 >= *count
            }),
            Wait::TasksGone { service, tasks, .. } => match fresh.service(service) {
                Ok(s) => {
                    let live: std::collections::HashSet<&str> = s.tasks.iter().map(|t| t.arn.as_str()).collect();
                    tasks.iter().all(|v| !live.contains(v.as_str()))
                }
                Err(_) => true,
            },
            Wait::ServiceWhole { service, .. } => match fresh.service(service) {
                Ok(s) => s.service.deployments.len() <= 1 && s.healthy() >= s.service.desired,
                Err(_) => true,
            },
            Wait::InstanceAtMost { arn, max, .. } => match fresh.instances.get(arn).and_then(Option::as_ref) {
                Some(i) => (i.running_tasks as f64) <= *max || i.status != InstanceStatus::Draining,
                None => true,
            },
            Wait::Sleep { .. } => true,
        }
    }
}

/// One phase of a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// Checked on a fresh read before the actions.
    pub guard: Guard,
    /// Sent in order.
    pub actions: Vec<Act>,
    /// Sent instead when the guard does not hold (then the step ends).
    pub otherwise: Vec<Act>,
    /// Awaited after the actions.
    pub wait: Option<Wait>,
    /// Sent when the wait times out (then the step ends).
    pub on_timeout: Vec<Act>,
}

impl Phase {
    /// A phase with only a guard and actions.
    pub fn new(guard: Guard, actions: Vec<Act>) -> Phase {
        Phase { guard, actions, otherwise: vec![], wait: None, on_timeout: vec![] }
    }

    /// Awaits `w` after the actions.
    pub fn then_wait(mut self, w: Wait) -> Phase {
        self.wait = Some(w);
        self
    }
}

/// One unit of work of one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The job.
    pub job: JobKind,
    /// What it is for, in one line.
    pub reason: String,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// Sent whatever happened (after the last phase, a failed guard or a timeout); after a
    /// call failed for good, only once `on_error` went through (else the marks it would
    /// remove stay for the next run's recovery).
    pub finally: Vec<Act>,
    /// Sent, before `finally`, when a call of the step failed for good (the API kept failing).
    pub on_error: Vec<Act>,
    /// The task restarts it is predicted to cause (for the run's restart limit and output).
    pub moves: Vec<Move>,
    /// The service it moves tasks of, if any.
    pub service: Option<String>,
}

impl Step {
    /// A step of one phase.
    pub fn one(job: JobKind, reason: impl Into<String>, guard: Guard, actions: Vec<Act>) -> Step {
        Step {
            job,
            reason: reason.into(),
            phases: vec![Phase::new(guard, actions)],
            finally: vec![],
            on_error: vec![],
            moves: vec![],
            service: None,
        }
    }

    /// The longest it can take: every wait's timeout, plus a minute for the calls.
    pub fn longest(&self) -> Millis {
        self.phases.iter().filter_map(|p| p.wait.as_ref()).fold(Millis::mins(1), |a, w| a + w.timeout())
    }

    /// Every act, in the order a run that meets no failed guard and no timeout sends them.
    pub fn acts(&self) -> impl Iterator<Item = &Act> {
        self.phases.iter().flat_map(|p| p.actions.iter()).chain(self.finally.iter())
    }
}

/// Why a job decided what it did, for output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The job.
    pub job: JobKind,
    /// One line.
    pub summary: String,
    /// More lines (per service, per instance).
    pub details: Vec<String>,
}

/// The plan of one run on one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Cluster name.
    pub cluster: String,
    /// Steps, in the order they run.
    pub steps: Vec<Step>,
    /// What each job decided, and why.
    pub decisions: Vec<Decision>,
    /// The rebalance planner's explanation (measure, COV before and after, the lower bound,
    /// skipped services), when rebalance was considered.
    pub rebalance: Option<crate::planner::Plan>,
}

impl Plan {
    /// An empty plan.
    pub fn new(cluster: &str) -> Plan {
        Plan { cluster: cluster.into(), steps: vec![], decisions: vec![], rebalance: None }
    }

    /// Predicted task restarts.
    pub fn restarts(&self) -> usize {
        self.steps.iter().map(|s| s.moves.len()).sum()
    }

    /// Records a job's decision.
    pub fn decided(&mut self, job: JobKind, summary: impl Into<String>, details: Vec<String>) {
        self.decisions.push(Decision { job, summary: summary.into(), details });
    }
}

/// The API calls a run that meets no failed guard and no timeout sends, rendered from the plan
/// and the snapshot it was made from: a protection act becomes its SetTaskProtection calls (10
/// tasks each), with `(new task N of SERVICE)` standing for a task a surge starts (the tasks of
/// a service are followed through the plan: an earlier step's victims gone, its new tasks
/// there). This is what the dry run shows.
pub fn render(plan: &Plan, view: &Snapshot) -> Vec<Action> {
    render_steps(plan, view).into_iter().flatten().collect()
}

/// [`render`], step by step: the calls each step of the plan sends.
pub fn render_steps(plan: &Plan, view: &Snapshot) -> Vec<Vec<Action>> {
    let mut all = Vec::new();
    // Each service's unprotected live tasks as the plan goes, and how many new ones so far.
    let mut tasks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut started: BTreeMap<String, u32> = BTreeMap::new();
    for step in &plan.steps {
        let mut out = Vec::new();
        let surge = step.phases.iter().find_map(|p| match &p.wait {
            Some(Wait::NewTasksHealthy { service, count, .. }) => Some((service.clone(), *count)),
            _ => None,
        });
        if let Some((service, count)) = &surge {
            let list = tasks.entry(service.clone()).or_insert_with(|| {
                view.service_tasks(service).filter(|t| !t.protected).map(|t| t.arn.clone()).collect()
            });
            let n = started.entry(service.clone()).or_default();
            for _ in 0..*count {
                *n += 1;
                list.push(format!("(new task {n} of {service})"));
            }
        }
        let mut protected: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for act in step.acts() {
            match act {
                Act::Send { action } => out.push(action.clone()),
                Act::ProtectAllBut { service, victims, minutes } => {
                    let list = tasks.entry(service.clone()).or_insert_with(|| {
                        view.service_tasks(service).filter(|t| !t.protected).map(|t| t.arn.clone()).collect()
                    });
                    let arns: Vec<String> = list.iter().filter(|a| !victims.contains(a)).cloned().collect();
                    for chunk in arns.chunks(10) {
                        out.push(Action::SetTaskProtection {
                            task_arns: chunk.to_vec(),
                            protected: true,
                            expires_in_minutes: *minutes,
                        });
                    }
                    protected.insert(service.clone(), arns);
                }
                Act::ClearProtection { service } => {
                    for chunk in protected.remove(service).unwrap_or_default().chunks(10) {
                        out.push(Action::SetTaskProtection {
                            task_arns: chunk.to_vec(),
                            protected: false,
                            expires_in_minutes: 0,
                        });
                    }
                }
            }
        }
        // The victims of a step are gone after it.
        let victims: Vec<&String> = step.moves.iter().map(|m| &m.task_arn).collect();
        for list in tasks.values_mut() {
            list.retain(|a| !victims.contains(&a));
        }
        all.push(out);
    }
    all
}
