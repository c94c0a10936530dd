//! Text and JSON renderings: per-instance bars, COV per measure, plans, report tables.

use ballast_core::metrics::{self, Counting, Measure};
use ballast_core::model::Snapshot;
use ballast_core::model::short_id as short;
use ballast_core::planner::{Mechanism, Plan};
use ballast_exec::execute::StepResult;
use ballast_exec::orchestrate::ClusterRun;
use ballast_sim::report::Report;
use serde_json::{Value, json};

/// The version of the JSON that `status`, `plan`, `run` and `simulate` print
/// (docs/json.md). It changes when a field is removed or changes meaning; new fields may
/// appear without a change.
pub const SCHEMA_VERSION: u32 = 1;

/// API calls in the one shape every document uses: `{"total": N, "by_operation": {…}}`
/// (attempts, retries included).
pub fn api_calls_json(calls: &std::collections::BTreeMap<String, u64>) -> Value {
    json!({"total": calls.values().sum::<u64>(), "by_operation": calls})
}

/// A `status`, `plan` or `run` document (docs/json.md): the schema version, one entry per
/// cluster, the clusters that failed, and the API calls made.
pub fn document(clusters: Vec<Value>, errors: Value, calls: &std::collections::BTreeMap<String, u64>) -> Value {
    json!({"schema_version": SCHEMA_VERSION, "clusters": clusters, "errors": errors, "api_calls": api_calls_json(calls)})
}

fn live_service_tasks(snap: &Snapshot, arn: &str) -> usize {
    snap.tasks
        .iter()
        .filter(|t| t.is_live() && t.instance_arn == arn && t.service.is_some() && !snap.is_daemon_task(t))
        .count()
}

/// The operator's table: one row per instance (with a bar of its service tasks), one per
/// service (desired, running, tasks per Availability Zone, the strategy in effect), one per
/// Availability Zone, and the COV of each measure.
pub fn status_text(snap: &Snapshot) -> String {
    let live: Vec<&ballast_core::model::Task> = snap.tasks.iter().filter(|t| t.is_live()).collect();
    let mut out = format!(
        "cluster {}: {} instance(s), {} service(s), {} task(s)\n",
        snap.cluster,
        snap.instances.len(),
        snap.services.len(),
        live.len()
    );
    let max = snap.instances.iter().map(|i| live_service_tasks(snap, &i.arn)).max().unwrap_or(0).max(1);
    out.push_str(&format!(
        "  {:<20} {:<11} {:<11} {:<8} {:>7} {:>6} {:>5} {:>5}\n",
        "INSTANCE", "AZ", "TYPE", "STATUS", "SERVICE", "OTHER", "CPU%", "MEM%"
    ));
    for i in &snap.instances {
        let n = live_service_tasks(snap, &i.arn);
        let other = live.iter().filter(|t| t.instance_arn == i.arn).count() - n;
        let cpu = 100.0 * (i.registered.cpu - i.remaining.cpu) as f64 / i.registered.cpu.max(1) as f64;
        let mem = 100.0 * (i.registered.memory - i.remaining.memory) as f64 / i.registered.memory.max(1) as f64;
        let mut flags = String::new();
        if i.drained_by_ballast() {
            flags.push_str(" (drained by ballast)");
        }
        if i.ignored() {
            flags.push_str(" (ballast:ignore)");
        }
        out.push_str(&format!(
            "  {:<20} {:<11} {:<11} {:<8} {:>7} {:>6} {:>5.0} {:>5.0} {}{flags}\n",
            i.ec2_instance_id,
            i.az(),
            i.instance_type(),
            i.status.as_str(),
            n,
            other,
            cpu,
            mem,
            "█".repeat((n * 30).div_ceil(max))
        ));
    }
    let mut azs: Vec<&str> = snap.instances.iter().map(|i| i.az()).collect();
    azs.sort_unstable();
    azs.dedup();
    let az_of = |arn: &str| snap.instance(arn).map_or("", |i| i.az());
    out.push_str(&format!("  {:<20} {:>7} {:>7}", "SERVICE", "DESIRED", "RUNNING"));
    for az in &azs {
        out.push_str(&format!(" {az:>11}"));
    }
    out.push_str("  STRATEGY\n");
    for svc in &snap.services {
        let tasks: Vec<&&ballast_core::model::Task> =
            live.iter().filter(|t| t.service.as_deref() == Some(svc.name.as_str())).collect();
        let running = tasks.iter().filter(|t| t.last_status == ballast_core::model::TaskStatus::Running).count();
        let desired = if svc.daemon { "daemon".to_string() } else { svc.desired.to_string() };
        out.push_str(&format!("  {:<20} {:>7} {:>7}", svc.name, desired, running));
        for az in &azs {
            out.push_str(&format!(" {:>11}", tasks.iter().filter(|t| az_of(&t.instance_arn) == *az).count()));
        }
        let strategy: Vec<String> = svc.effective_strategy().iter().map(ToString::to_string).collect();
        let mut note = String::new();
        if svc.ignored() {
            note.push_str(" (ballast:ignore)");
        }
        for by in &svc.scaled_by {
            note.push_str(&format!(" (scaled by {by})"));
        }
        let strategy = if svc.daemon { "one per instance".to_string() } else { strategy.join(", ") };
        out.push_str(&format!("  {strategy}{note}\n"));
    }
    out.push_str(&format!("  {:<20} {:>9} {:>7} {:>5} {:>5}\n", "AZ", "INSTANCES", "TASKS", "CPU%", "MEM%"));
    for az in &azs {
        let inst: Vec<_> = snap.instances.iter().filter(|i| i.az() == *az).collect();
        let (rc, uc, rm, um) = inst.iter().fold((0, 0, 0, 0), |(rc, uc, rm, um), i| {
            (
                rc + i.registered.cpu,
                uc + i.registered.cpu - i.remaining.cpu,
                rm + i.registered.memory,
                um + i.registered.memory - i.remaining.memory,
            )
        });
        let tasks = live.iter().filter(|t| az_of(&t.instance_arn) == *az).count();
        out.push_str(&format!(
            "  {:<20} {:>9} {:>7} {:>5.0} {:>5.0}\n",
            if az.is_empty() { "(none)" } else { az },
            inst.len(),
            tasks,
            100.0 * uc as f64 / rc.max(1) as f64,
            100.0 * um as f64 / rm.max(1) as f64
        ));
    }
    let c = Counting::default();
    let measured = snap.tasks.iter().any(|t| t.utilization.is_some());
    out.push_str("  COV:");
    for m in Measure::ALL {
        if matches!(m, Measure::CpuUtilized | Measure::MemoryUtilized) && !measured {
            out.push_str(&format!(" {} unknown", m.name()));
        } else {
            out.push_str(&format!(" {} {:.1}%", m.name(), metrics::cov(snap, m, c)));
        }
    }
    out.push('\n');
    out
}

/// The Auto Scaling groups' table.
pub fn groups_text(groups: &[ballast_core::backend::GroupInfo]) -> String {
    use ballast_core::backend::Lifecycle;
    if groups.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "  {:<20} {:>7} {:>4} {:>4} {:>10} {:>9} {:>7} {:>8}\n",
        "GROUP", "DESIRED", "MIN", "MAX", "IN SERVICE", "LAUNCHING", "LEAVING", "COOLDOWN"
    );
    for g in groups {
        out.push_str(&format!(
            "  {:<20} {:>7} {:>4} {:>4} {:>10} {:>9} {:>7} {:>8}\n",
            g.name,
            g.desired,
            g.min,
            g.max,
            g.count(Lifecycle::InService),
            g.count(Lifecycle::Launching),
            g.count(Lifecycle::Leaving),
            g.cooldown.map_or("?".to_string(), |c| c.to_string())
        ));
    }
    out
}

/// The groups as `status --json` shows them.
pub fn groups_json(groups: &[ballast_core::backend::GroupInfo]) -> Value {
    use ballast_core::backend::Lifecycle;
    Value::Array(
        groups
            .iter()
            .map(|g| {
                json!({
                    "name": g.name, "desired": g.desired, "min": g.min, "max": g.max,
                    "in_service": g.count(Lifecycle::InService), "launching": g.count(Lifecycle::Launching),
                    "leaving": g.count(Lifecycle::Leaving), "cooldown_s": g.cooldown.map(|c| c.as_secs_f64()),
                })
            })
            .collect(),
    )
}

/// `status --json` for one cluster (SPEC.md).
pub fn status_json(snap: &Snapshot) -> Value {
    let c = Counting::default();
    let instances: Vec<Value> = snap
        .instances
        .iter()
        .map(|i| {
            json!({
                "container_instance_arn": i.arn,
                "ec2_instance_id": i.ec2_instance_id,
                "status": i.status.as_str(),
                "az": i.az(),
                "instance_type": i.instance_type(),
                "running_tasks": i.running_tasks,
                "service_tasks": live_service_tasks(snap, &i.arn),
                "cpu_reserved_percent": round1(100.0 * (i.registered.cpu - i.remaining.cpu) as f64 / i.registered.cpu.max(1) as f64),
                "memory_reserved_percent": round1(100.0 * (i.registered.memory - i.remaining.memory) as f64 / i.registered.memory.max(1) as f64),
                "drained_by_ballast": i.drained_by_ballast(),
            })
        })
        .collect();
    let mut cov = serde_json::Map::new();
    // What tasks use is known only where the backend measures it (the simulator); elsewhere
    // the utilized measures are null (unknown), never a made-up figure.
    let measured = snap.tasks.iter().any(|t| t.utilization.is_some());
    for m in Measure::ALL {
        let utilized = matches!(m, Measure::CpuUtilized | Measure::MemoryUtilized);
        let v = if utilized && !measured { Value::Null } else { json!(round1(metrics::cov(snap, m, c))) };
        // JSON keys are snake_case (`cpu_utilized`); the measure's name in the configuration
        // is `cpu-utilized`.
        cov.insert(m.name().replace('-', "_"), v);
    }
    json!({"cluster": snap.cluster, "instances": instances, "cov_percent": cov})
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A plan for humans: the verdict, then per step what moves and why.
pub fn plan_text(p: &Plan, snap: &Snapshot) -> String {
    let ec2 =
        |arn: &str| snap.instance(arn).map(|i| i.ec2_instance_id.clone()).unwrap_or_else(|| short(arn).to_string());
    let mut out = format!("cluster {}: {}\n", p.cluster, p.summary);
    for (n, s) in p.services.iter().enumerate() {
        let how = match &s.mechanism {
            Mechanism::Surge { from, to } => format!("surge {from}→{to}→{from}"),
            Mechanism::Stop => "stop".to_string(),
            Mechanism::Drain { instance } => format!("drain {}", ec2(instance)),
            Mechanism::Redeploy => "redeploy".to_string(),
        };
        let who = if s.service.is_empty() { String::new() } else { format!("{} ", s.service) };
        out.push_str(&format!("  {}. {who}{how}: {}\n", n + 1, s.reason));
        for m in &s.moves {
            out.push_str(&format!(
                "       task {} {} → {}{}\n",
                short(&m.task_arn),
                ec2(&m.from),
                ec2(&m.to),
                if m.tied { " (or an equally good instance)" } else { "" }
            ));
        }
    }
    for s in &p.skipped {
        out.push_str(&format!("  skipped {}: {}\n", s.service, s.reason));
    }
    out
}

/// The side-by-side comparison table.
pub fn report_table(rs: &[Report]) -> String {
    let w = rs.iter().map(|r| r.policy.len()).max().unwrap_or(0).max(18);
    let mut out = format!(
        "{:<w$} {:>9} {:>9} {:>11} {:>10} {:>10} {:>8} {:>10} {:>9} {:>8} {:>9} {:>5} {:>6}\n",
        "policy",
        "restarts",
        "min_moves",
        "to balanced",
        "count COV",
        "balanced",
        "avail %",
        "unplaced s",
        "cost $",
        "API",
        "draining",
        "lost",
        "errors"
    );
    for r in rs {
        let bal = r.time_to_balanced_s.map_or("never".to_string(), |s| format!("{s:.0}s"));
        out.push_str(&format!(
            "{:<w$} {:>9} {:>9} {:>11} {:>9.1}% {:>10} {:>8.1} {:>10.0} {:>9.3} {:>8} {:>9} {:>5} {:>6}\n",
            r.policy,
            r.tasks_restarted,
            r.min_moves,
            format!(
                "{}{}",
                r.min_moves_balanced,
                if r.min_moves_balanced_exact || r.min_moves_balanced == 0 { "" } else { "+" }
            ),
            r.final_cov_percent.count,
            bal,
            r.min_availability_percent,
            r.unplaced_task_seconds,
            r.cost,
            r.api_calls.total,
            r.left_draining,
            r.tasks_lost,
            r.errors.len()
        ));
    }
    // `--scheduler-bound`: the tighter bound for policies that never drain, one line each.
    for r in rs {
        if let Some(b) = r.min_moves_scheduled {
            out.push_str(&format!(
                "{}: the fewest restarts to balanced through the scheduler {}{}{}\n",
                r.policy,
                b,
                if r.min_moves_scheduled_exact || b == 0 { "" } else { "+" },
                r.restarts_over_scheduled_bound.map_or(String::new(), |q| format!(" ({q:.2} × that)"))
            ));
        }
    }
    out
}

/// One cluster's run (or dry run) as JSON (docs/json.md): what each job decided and why, the
/// plan's steps (a dry run) or how each step ended (a run), and the actions sent (or that
/// would be).
pub fn run_json(r: &ClusterRun) -> Value {
    // A real run reports the rebalance decision without its planned moves: `outcome.steps`
    // says what was done, and the dry run (`plan`) is where the plan is shown.
    let rebalance = r.plan.rebalance.as_ref().map(|p| {
        let mut v = json!(p);
        if !r.dry_run
            && let Some(o) = v.as_object_mut()
        {
            o.remove("services");
        }
        v
    });
    let mut v = json!({
        "cluster": r.cluster,
        "dry_run": r.dry_run,
        "started_at_s": r.started_at_s,
        "decisions": r.plan.decisions,
        "rebalance": rebalance,
        "autoscale": r.explained.autoscale,
        "spot_fallback": r.explained.spot,
        "actions": r.actions,
    });
    match &r.outcome {
        Some(o) => v["outcome"] = json!(o),
        None => {
            v["steps"] = json!(
                r.plan
                    .steps
                    .iter()
                    .map(|s| json!({"job": s.job, "reason": s.reason, "service": s.service, "moves": s.moves}))
                    .collect::<Vec<_>>()
            )
        }
    }
    if let Some(w) = &r.lease_held {
        v["lease_held"] = json!(w);
    }
    if let Some(s) = &r.after {
        v["status_after"] = status_json(s);
    }
    v
}

/// One cluster's run (or dry run) for humans: each job's decision, the rebalance plan's
/// moves, then the actions sent (or, in a dry run, that would be) and how each step ended.
pub fn run_text(r: &ClusterRun) -> String {
    let mut out = String::new();
    if let Some(w) = &r.lease_held {
        out.push_str(&format!("cluster {}: nothing done: {w}\n", r.cluster));
    }
    for d in &r.plan.decisions {
        out.push_str(&format!("cluster {}: {}: {}\n", r.cluster, d.job.name(), d.summary));
        for line in &d.details {
            out.push_str(&format!("  {line}\n"));
        }
        if d.job == ballast_core::plan::JobKind::Rebalance
            && let Some(p) = &r.plan.rebalance
        {
            for s in &p.skipped {
                out.push_str(&format!("  skipped {}: {}\n", s.service, s.reason));
            }
        }
    }
    if r.dry_run {
        // Each step once: what it is for, the tasks it moves, and the calls it would send.
        let ec2 = |arn: &str| {
            r.before
                .as_ref()
                .and_then(|b| b.instance(arn))
                .map(|i| i.ec2_instance_id.clone())
                .unwrap_or_else(|| short(arn).to_string())
        };
        let mut sent = r.actions.iter();
        let per_step = r.before.as_ref().map(|b| ballast_core::plan::render_steps(&r.plan, b));
        for (n, step) in r.plan.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}: {}\n", n + 1, step.job.name(), step.reason));
            for m in &step.moves {
                out.push_str(&format!(
                    "       task {} {} → {}{}\n",
                    short(&m.task_arn),
                    ec2(&m.from),
                    ec2(&m.to),
                    if m.tied { " (or an equally good instance)" } else { "" }
                ));
            }
            let count = per_step.as_ref().map_or(0, |p| p[n].len());
            for d in sent.by_ref().take(count) {
                out.push_str(&format!("       would: {}\n", d.text));
            }
        }
        for d in sent {
            out.push_str(&format!("  would: {}\n", d.text));
        }
    } else {
        for d in &r.actions {
            out.push_str(&format!("  {}\n", d.text));
        }
    }
    if let Some(o) = &r.outcome {
        for s in o.steps.iter().filter(|s| s.result != StepResult::Done) {
            out.push_str(&format!("  {} step {:?}: {}\n", s.job.name(), s.result, s.reason));
        }
        if let Some(why) = &o.stopped_early {
            out.push_str(&format!("  stopped early: {why}\n"));
        }
    }
    if let (Some(s), Some(o)) = (&r.after, &r.outcome) {
        out.push_str(&format!("{} restart(s) in {} step(s); now:\n", o.restarts, o.steps.len()));
        out.push_str(&status_text(s));
    }
    out
}
