//! Amazon ECS over the simulator: the list, describe and change calls of the EC2 launch
//! type, with ECS's limits (10 services, 100 instances or tasks per describe; 10 instances or
//! tasks per state or protection change), its paging and its error codes.

use ballast_core::action::Action;
use ballast_core::backend::BackendError;
use ballast_core::duration::Millis;
use ballast_core::model::{BinpackField, Constraint, InstanceStatus, Strategy, TaskNeeds};
use ballast_core::placement::{TaskSpec, compile};
use serde_json::{Map, Value, json};

use super::{Answer, ApiError, Def, World, bool_of, int_of, list_of, page, shapes, str_of, unknown_op};
use crate::engine::InstState;
use crate::scheduler::{Svc, TState};

fn backend_err(e: BackendError) -> ApiError {
    match e {
        BackendError::NotFound { what, .. } => ApiError::invalid(format!("{what} was not found")),
        BackendError::Invalid { message, .. } => ApiError::invalid(message),
        BackendError::Conflict { message, .. } => ApiError::client("ClientException", message),
        other => ApiError { status: 500, code: "ServerException".into(), message: other.to_string() },
    }
}

fn strategy_json(s: &Strategy) -> Value {
    match s {
        Strategy::Random => json!({"type": "random"}),
        Strategy::Spread(f) => json!({"type": "spread", "field": f}),
        Strategy::Binpack(BinpackField::Cpu) => json!({"type": "binpack", "field": "cpu"}),
        Strategy::Binpack(BinpackField::Memory) => json!({"type": "binpack", "field": "memory"}),
    }
}

fn constraint_json(c: &Constraint) -> Value {
    match c {
        Constraint::DistinctInstance => json!({"type": "distinctInstance"}),
        Constraint::MemberOf(e) => json!({"type": "memberOf", "expression": e}),
    }
}

fn parse_strategies(req: &Value) -> Result<Vec<Strategy>, ApiError> {
    let Some(list) = req.get("placementStrategy").and_then(Value::as_array) else { return Ok(vec![]) };
    list.iter()
        .map(|p| {
            let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
            let field = p.get("field").and_then(Value::as_str).unwrap_or("");
            let text = if kind == "random" { "random".to_string() } else { format!("{kind}({field})") };
            Strategy::parse(&text).map_err(ApiError::invalid)
        })
        .collect()
}

fn parse_constraints(v: Option<&Value>) -> Result<Vec<Constraint>, ApiError> {
    let Some(list) = v.and_then(Value::as_array) else { return Ok(vec![]) };
    list.iter()
        .map(|p| match p.get("type").and_then(Value::as_str) {
            Some("distinctInstance") => Ok(Constraint::DistinctInstance),
            Some("memberOf") => {
                let e = p.get("expression").and_then(Value::as_str).unwrap_or("");
                Constraint::parse(&format!("memberOf({e})")).map_err(ApiError::invalid)
            }
            other => Err(ApiError::invalid(format!(
                "placement constraint type {other:?} is not distinctInstance or memberOf"
            ))),
        })
        .collect()
}

fn tags_json(tags: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Array(tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect())
}

fn parse_tags(req: &Value) -> Vec<(String, String)> {
    req.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((
                        t.get("key")?.as_str()?.to_string(),
                        t.get("value").and_then(Value::as_str).unwrap_or("").into(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn includes(req: &Value, what: &str) -> bool {
    list_of(req, "include").iter().any(|i| i == what)
}

impl World {
    pub(super) fn ecs(&mut self, op: &str, req: &Value) -> Result<Answer, ApiError> {
        if let Some(answer) = self.clusterless_op(op, req) {
            return answer.map(Answer::Json);
        }
        self.cluster(req)?;
        self.cluster_op(op, req)
    }

    /// The calls that name no cluster (`None`: `op` is not one of them).
    fn clusterless_op(&mut self, op: &str, req: &Value) -> Option<Result<Value, ApiError>> {
        Some(match op {
            "ListClusters" => Ok(json!({"clusterArns": [self.sim.cluster_arn()]})),
            "DescribeClusters" => Ok(self.describe_clusters(req)),
            "DescribeCapacityProviders" => Ok(json!({"capacityProviders": [], "failures": []})),
            "ListAccountSettings" => Ok(json!({"settings": []})),
            "RegisterTaskDefinition" => self.register_task_definition(req),
            "DescribeTaskDefinition" => self.describe_task_definition(req),
            // Tags name their resource by ARN, not by cluster.
            "TagResource" | "UntagResource" | "ListTagsForResource" => self.tags(op, req),
            "ListTaskDefinitions" => self.list_task_definitions(req),
            _ => return None,
        })
    }

    fn describe_task_definition(&self, req: &Value) -> Result<Value, ApiError> {
        let r = str_of(req, "taskDefinition").ok_or_else(|| ApiError::invalid("taskDefinition is required"))?;
        let d = self.def(r)?;
        Ok(json!({"taskDefinition": self.def_json(d), "tags": []}))
    }

    fn list_task_definitions(&self, req: &Value) -> Result<Value, ApiError> {
        let family = str_of(req, "familyPrefix");
        let arns: Vec<&str> = self
            .defs
            .values()
            .filter(|d| family.is_none_or(|f| d.family.starts_with(f)))
            .map(|d| d.arn.as_str())
            .collect();
        let (arns, next) = page(arns, req, 100, 100)?;
        Ok(paged("taskDefinitionArns", arns, next))
    }

    /// The calls answered straight from typed shapes (the most frequent, 100 items each).
    fn cluster_op(&mut self, op: &str, req: &Value) -> Result<Answer, ApiError> {
        match op {
            "DescribeContainerInstances" => {
                let refs = list_of(req, "containerInstances");
                limit("containerInstances", &refs, 100)?;
                let tags = includes(req, "TAGS");
                let (found, failures) = resolve(&refs, |r| self.inst_ref(r));
                #[derive(serde::Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Out<'a> {
                    container_instances: Vec<shapes::Instance<'a>>,
                    failures: Vec<Value>,
                }
                let container_instances = found.into_iter().map(|n| self.instance_out(n, tags)).collect();
                Ok(Answer::Raw(serde_json::to_string(&Out { container_instances, failures }).expect("JSON")))
            }
            "DescribeTasks" => {
                let refs = list_of(req, "tasks");
                limit("tasks", &refs, 100)?;
                let (found, failures) = resolve(&refs, |r| self.task_ref(r));
                #[derive(serde::Serialize)]
                struct Out<'a> {
                    tasks: Vec<shapes::Task<'a>>,
                    failures: Vec<Value>,
                }
                let tasks = found.into_iter().map(|t| self.task_out(t)).collect();
                Ok(Answer::Raw(serde_json::to_string(&Out { tasks, failures }).expect("JSON")))
            }
            _ => self.cluster_op_value(op, req).map(Answer::Json),
        }
    }

    fn cluster_op_value(&mut self, op: &str, req: &Value) -> Result<Value, ApiError> {
        match op {
            "ListContainerInstances" => self.list_container_instances(req),
            "UpdateContainerInstancesState" => self.update_instances_state(req),
            "PutAttributes" | "DeleteAttributes" => self.attributes(op, req),
            "ListServices" => {
                let daemon = str_of(req, "schedulingStrategy").map(|s| s == "DAEMON");
                if str_of(req, "launchType").is_some_and(|l| l != "EC2") {
                    return Ok(json!({"serviceArns": []}));
                }
                let arns: Vec<String> = self
                    .sim
                    .svcs
                    .iter()
                    .filter(|s| daemon.is_none_or(|d| s.daemon == d))
                    .map(|s| self.service_arn(s))
                    .collect();
                let (arns, next) = page(arns, req, 10, 100)?;
                Ok(paged("serviceArns", arns, next))
            }
            "DescribeServices" => {
                let refs = list_of(req, "services");
                limit("services", &refs, 10)?;
                let tags = includes(req, "TAGS");
                let (found, failures) = resolve(&refs, |r| self.svc_ref(r));
                let out: Vec<Value> = found.into_iter().map(|s| self.service_json(s, tags)).collect();
                Ok(json!({"services": out, "failures": failures}))
            }
            "CreateService" => self.create_service(req),
            "UpdateService" => self.update_service(req),
            "ListTasks" => self.list_tasks(req),
            "RunTask" => self.run_task(req),
            "StartTask" => self.start_task(req),
            "StopTask" => {
                let r = str_of(req, "task").ok_or_else(|| ApiError::invalid("task is required"))?;
                let t = self.task_ref(r).ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
                let reason = str_of(req, "reason").unwrap_or("Task stopped by the user").to_string();
                let arn = self.sim.tasks[t].arn.clone();
                self.sim
                    .apply_action(&Action::StopTask { task_arn: arn, reason: reason.clone() })
                    .map_err(backend_err)?;
                self.stop_reasons.entry(t).or_insert(reason);
                Ok(json!({"task": self.task_json(t)}))
            }
            "GetTaskProtection" => {
                let refs = list_of(req, "tasks");
                limit("tasks", &refs, 100)?;
                let (found, failures) = resolve(&refs, |r| self.unstopped_task_ref(r));
                let out: Vec<Value> = found.into_iter().map(|t| self.protection_json(t)).collect();
                Ok(json!({"protectedTasks": out, "failures": failures}))
            }
            "UpdateTaskProtection" => {
                let refs = list_of(req, "tasks");
                limit("tasks", &refs, 10)?;
                let enabled = bool_of(req, "protectionEnabled")
                    .ok_or_else(|| ApiError::invalid("protectionEnabled is required"))?;
                let minutes = int_of(req, "expiresInMinutes")?.unwrap_or(120);
                if enabled && !(1..=2880).contains(&minutes) {
                    return Err(ApiError::invalid("expiresInMinutes must be between 1 and 2880"));
                }
                let (found, failures) = resolve(&refs, |r| self.unstopped_task_ref(r));
                let arns = found.iter().map(|&t| self.sim.tasks[t].arn.clone()).collect();
                self.sim
                    .apply_action(&Action::SetTaskProtection {
                        task_arns: arns,
                        protected: enabled,
                        // A duration the client gives is on its clock (the module's note).
                        expires_in_minutes: ((minutes as f64) * self.speed).round().max(1.0) as u32,
                    })
                    .map_err(backend_err)?;
                let out: Vec<Value> = found.iter().map(|&t| self.protection_json(t)).collect();
                Ok(json!({"protectedTasks": out, "failures": failures}))
            }
            _ => Err(unknown_op(op)),
        }
    }

    // --- resolution --------------------------------------------------------------------

    fn cluster(&self, req: &Value) -> Result<(), ApiError> {
        let c = str_of(req, "cluster").unwrap_or("default");
        if c == self.sim.sc.cluster || c == self.sim.cluster_arn() {
            Ok(())
        } else {
            Err(ApiError::client("ClusterNotFoundException", "Cluster not found."))
        }
    }

    fn inst_ref(&self, r: &str) -> Option<usize> {
        let n = self.inst_index.get(r).copied()?;
        matches!(self.sim.insts[n].state, InstState::Active | InstState::Draining).then_some(n)
    }

    fn svc_ref(&self, r: &str) -> Option<usize> {
        let name = r.rsplit('/').next().unwrap_or(r);
        self.sim.svcs.iter().position(|s| s.name == name)
    }

    fn task_ref(&self, r: &str) -> Option<usize> {
        if let Some(&t) = self.sim.task_ids.get(r) {
            return Some(t);
        }
        let arn = self.sim.ecs_arn("task", &format!("{}/{r}", self.sim.sc.cluster));
        self.sim.task_ids.get(&arn).copied()
    }

    /// A task ECS still knows (described, protected) by ARN or id.
    fn unstopped_task_ref(&self, r: &str) -> Option<usize> {
        self.task_ref(r).filter(|&t| self.sim.tasks[t].state != TState::Stopped)
    }

    fn service_arn(&self, s: &Svc) -> String {
        self.sim.ecs_arn("service", &format!("{}/{}", self.sim.sc.cluster, s.name))
    }

    /// A task definition by ARN, `family:revision` or `family` (its latest revision).
    fn def(&self, r: &str) -> Result<&Def, ApiError> {
        let key = r.split_once("task-definition/").map_or(r, |(_, k)| k);
        let (family, rev) = match key.rsplit_once(':') {
            Some((f, v)) => (f, v.parse::<u32>().ok()),
            None => (key, None),
        };
        let rev = rev.or_else(|| self.latest.get(family).copied());
        let arn = self.sim.ecs_arn("task-definition", &format!("{family}:{}", rev.unwrap_or(0)));
        self.defs.get(&arn).ok_or_else(|| ApiError::client("ClientException", "Unable to describe task definition."))
    }

    fn task_def_of(&self, t: usize) -> String {
        let task = &self.sim.tasks[t];
        match (task.service, task.standalone) {
            (Some(s), _) => self.sim.deployment_def(s, task.deployment).0.to_string(),
            (None, Some(k)) => self.standalone_defs.get(k).cloned().unwrap_or_default(),
            _ => String::new(),
        }
    }

    // --- shapes --------------------------------------------------------------------------

    fn describe_clusters(&self, req: &Value) -> Value {
        let mut refs = list_of(req, "clusters");
        if refs.is_empty() {
            refs.push("default".into());
        }
        let (mut out, mut failures) = (vec![], vec![]);
        for r in refs {
            if r == self.sim.sc.cluster || r == self.sim.cluster_arn() {
                let live = |st: TState| self.sim.tasks.iter().filter(|t| t.state == st).count();
                let registered = self
                    .sim
                    .insts
                    .iter()
                    .filter(|i| matches!(i.state, InstState::Active | InstState::Draining))
                    .count();
                let mut c = json!({
                    "clusterArn": self.sim.cluster_arn(),
                    "clusterName": self.sim.sc.cluster,
                    "status": "ACTIVE",
                    "registeredContainerInstancesCount": registered,
                    "runningTasksCount": live(TState::Running),
                    "pendingTasksCount": live(TState::Pending),
                    "activeServicesCount": self.sim.svcs.len(),
                    "capacityProviders": [],
                    "defaultCapacityProviderStrategy": [],
                });
                if includes(req, "TAGS") {
                    c["tags"] = tags_json(&self.sim.cluster_tags);
                }
                out.push(c);
            } else {
                let arn = if r.starts_with("arn:") { r } else { self.sim.ecs_arn("cluster", &r) };
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
            }
        }
        json!({"clusters": out, "failures": failures})
    }

    fn instance_json(&self, n: usize, tags: bool) -> Value {
        serde_json::to_value(self.instance_out(n, tags)).expect("JSON")
    }

    pub(super) fn instance_out(&self, n: usize, tags: bool) -> shapes::Instance<'_> {
        let i = &self.sim.insts[n];
        let node = &self.sim.cs.nodes[n];
        let (mut running, mut pending) = (0, 0);
        for &t in &self.sim.node_live[n] {
            match self.sim.tasks[t].state {
                TState::Running => running += 1,
                TState::Pending => pending += 1,
                _ => {}
            }
        }
        let gpus = self.sim.sc.groups[i.group].gpus;
        let gpu_ids = |k: u32| -> Vec<String> { (0..k).map(|g| format!("GPU-{n:04}-{g}")).collect() };
        let ports: Vec<String> = node.ports.iter().map(u16::to_string).collect();
        let udp: Vec<String> = node.extra.udp.iter().map(u16::to_string).collect();
        use shapes::Resource as R;
        let mut registered = vec![
            R::int("CPU", node.registered.cpu),
            R::int("MEMORY", node.registered.memory),
            R::set("PORTS", vec![]),
            R::set("PORTS_UDP", vec![]),
        ];
        let mut remaining = vec![
            R::int("CPU", node.free.cpu),
            R::int("MEMORY", node.free.memory),
            R::set("PORTS", ports),
            R::set("PORTS_UDP", udp),
        ];
        if gpus > 0 {
            registered.push(R::set("GPU", gpu_ids(gpus)));
            remaining.push(R::set("GPU", gpu_ids(node.extra.gpus_free)));
        }
        shapes::Instance {
            container_instance_arn: &i.arn,
            ec2_instance_id: &i.ec2_id,
            status: if i.state == InstState::Draining { "DRAINING" } else { "ACTIVE" },
            agent_connected: node.agent_connected,
            registered_resources: registered,
            remaining_resources: remaining,
            attributes: node.attributes.iter().map(|(k, v)| shapes::NameValue { name: k, value: v }).collect(),
            registered_at: self.epoch_s(node.registered_at),
            running_tasks_count: running,
            pending_tasks_count: pending,
            version: i.version,
            version_info: shapes::VersionInfo {
                agent_version: &node.extra.agent_version,
                docker_version: "DockerVersion: 25.0.8",
            },
            attachments: [],
            tags: tags.then(|| shapes::tags(&self.sim.sc.groups[i.group].tags)),
        }
    }

    fn service_json(&self, s: usize, tags: bool) -> Value {
        let svc = &self.sim.svcs[s];
        let live: Vec<usize> =
            self.sim.svc_live[s].iter().copied().filter(|&t| self.sim.tasks[t].state != TState::Stopping).collect();
        let count = |d: Option<u32>, st: TState| {
            live.iter()
                .filter(|&&t| self.sim.tasks[t].state == st && d.is_none_or(|d| self.sim.tasks[t].deployment == d))
                .count()
        };
        let mut old: Vec<u32> =
            live.iter().map(|&t| self.sim.tasks[t].deployment).filter(|&d| d != svc.deployment).collect();
        old.sort_unstable();
        old.dedup();
        let created = self.epoch_s(Millis(0));
        let mut deployments = vec![json!({
            "id": format!("ecs-svc/{}", svc.deployment),
            "status": "PRIMARY",
            "taskDefinition": svc.task_def,
            "desiredCount": svc.desired,
            "pendingCount": count(Some(svc.deployment), TState::Pending),
            "runningCount": count(Some(svc.deployment), TState::Running),
            "failedTasks": 0,
            "launchType": "EC2",
            "rolloutState": if old.is_empty() { "COMPLETED" } else { "IN_PROGRESS" },
            "rolloutStateReason": if old.is_empty() { "ECS deployment ecs-svc completed." } else { "ECS deployment ecs-svc in progress." },
            "createdAt": created,
            "updatedAt": self.epoch_s(self.sim.now),
        })];
        for d in old {
            let td = self.sim.deployment_def(s, d).0;
            deployments.push(json!({
                "id": format!("ecs-svc/{d}"),
                "status": "ACTIVE",
                "taskDefinition": td,
                "desiredCount": 0,
                "pendingCount": count(Some(d), TState::Pending),
                "runningCount": count(Some(d), TState::Running),
                "failedTasks": 0,
                "launchType": "EC2",
                "rolloutState": "COMPLETED",
                "createdAt": created,
                "updatedAt": created,
            }));
        }
        let mut v = json!({
            "serviceArn": self.service_arn(svc),
            "serviceName": svc.name,
            "clusterArn": self.sim.cluster_arn(),
            "status": "ACTIVE",
            "desiredCount": svc.desired,
            "runningCount": count(None, TState::Running),
            "pendingCount": count(None, TState::Pending),
            "launchType": "EC2",
            "taskDefinition": svc.task_def,
            "deploymentConfiguration": {
                "maximumPercent": svc.max_percent,
                "minimumHealthyPercent": svc.min_healthy,
                "deploymentCircuitBreaker": {"enable": false, "rollback": false},
            },
            "deployments": deployments,
            "placementConstraints": svc.constraints.iter().map(constraint_json).collect::<Vec<_>>(),
            "placementStrategy": svc.strategy.iter().map(strategy_json).collect::<Vec<_>>(),
            "schedulingStrategy": if svc.daemon { "DAEMON" } else { "REPLICA" },
            "loadBalancers": [],
            "serviceRegistries": [],
            "events": [],
            "createdAt": created,
            "enableECSManagedTags": false,
            "propagateTags": "NONE",
            "enableExecuteCommand": false,
        });
        if tags {
            v["tags"] = tags_json(&svc.tags);
        }
        v
    }

    fn task_json(&self, t: usize) -> Value {
        serde_json::to_value(self.task_out(t)).expect("JSON")
    }

    pub(super) fn task_out(&self, t: usize) -> shapes::Task<'_> {
        let task = &self.sim.tasks[t];
        let spec = self.sim.spec_ref(t);
        let inst = &self.sim.insts[task.node];
        let (last, desired) = match task.state {
            TState::Pending => ("PENDING", "RUNNING"),
            TState::Running => ("RUNNING", "RUNNING"),
            TState::Stopping => ("STOPPING", "STOPPED"),
            TState::Stopped => ("STOPPED", "STOPPED"),
        };
        let family = spec.group.split_once(':').map_or(spec.group.as_str(), |(_, f)| f);
        let bind =
            |p: &u16, protocol| shapes::Binding { bind_ip: "0.0.0.0", container_port: *p, host_port: *p, protocol };
        let bindings: Vec<shapes::Binding> = spec
            .host_ports
            .iter()
            .map(|p| bind(p, "tcp"))
            .chain(spec.needs.udp_ports.iter().map(|p| bind(p, "udp")))
            .collect();
        let id = task.arn.rsplit('/').next().unwrap_or("");
        let health = if task.state == TState::Running { "HEALTHY" } else { "UNKNOWN" };
        let started_by = match task.service {
            Some(_) => Some(format!("ecs-svc/{}", task.deployment)),
            None => self.started_by.get(&t).cloned(),
        };
        let reason = self.stop_reasons.get(&t).map(String::as_str);
        let stop_code = match (reason, task.state) {
            (Some(_), _) => Some("UserInitiated"),
            (None, TState::Stopping | TState::Stopped) => Some("ServiceSchedulerInitiated"),
            _ => None,
        };
        shapes::Task {
            task_arn: &task.arn,
            cluster_arn: self.sim.cluster_arn(),
            task_definition_arn: self.task_def_of(t),
            container_instance_arn: &inst.arn,
            last_status: last,
            desired_status: desired,
            group: &spec.group,
            cpu: spec.cpu.to_string(),
            memory: spec.memory.to_string(),
            launch_type: "EC2",
            availability_zone: &inst.az,
            connectivity: "CONNECTED",
            health_status: health,
            version: 1,
            attributes: [],
            attachments: [],
            overrides: shapes::Overrides { container_overrides: [shapes::Override { name: family }] },
            tags: [],
            containers: [shapes::Container {
                container_arn: self.sim.ecs_arn("container", &format!("{}/{id}/{family}", self.sim.sc.cluster)),
                task_arn: &task.arn,
                name: family,
                image: format!("public.ecr.aws/ballast-twin/{family}:latest"),
                last_status: last,
                network_bindings: bindings,
                cpu: spec.cpu.to_string(),
                memory: spec.memory.to_string(),
                health_status: health,
            }],
            started_by,
            stopped_reason: reason,
            stop_code,
        }
    }

    fn protection_json(&self, t: usize) -> Value {
        let task = &self.sim.tasks[t];
        if task.protected_until > self.sim.now {
            json!({"taskArn": task.arn, "protectionEnabled": true, "expirationDate": self.epoch_s(task.protected_until)})
        } else {
            json!({"taskArn": task.arn, "protectionEnabled": false})
        }
    }

    fn def_json(&self, d: &Def) -> Value {
        json!({
            "taskDefinitionArn": d.arn,
            "family": d.family,
            "revision": d.revision,
            "status": "ACTIVE",
            "containerDefinitions": d.containers,
            "cpu": d.cpu.to_string(),
            "memory": d.memory.to_string(),
            "networkMode": d.network_mode,
            "placementConstraints": d.constraints.iter().map(constraint_json).collect::<Vec<_>>(),
            "requiresCompatibilities": ["EC2"],
            "compatibilities": ["EC2"],
            "requiresAttributes": [],
            "volumes": [],
            "registeredAt": self.epoch_s(d.registered_at),
        })
    }

    // --- calls ---------------------------------------------------------------------------

    fn list_container_instances(&self, req: &Value) -> Result<Value, ApiError> {
        let status = match str_of(req, "status") {
            None => None,
            Some("ACTIVE") => Some(InstState::Active),
            Some("DRAINING") => Some(InstState::Draining),
            // Nothing in the simulated world stays in these.
            Some("REGISTERING" | "DEREGISTERING" | "REGISTRATION_FAILED") => Some(InstState::Gone),
            Some(s) => return Err(ApiError::invalid(format!("status `{s}` is not a container instance status"))),
        };
        let filter = match str_of(req, "filter") {
            Some(f) => Some(ballast_core::cql::Expr::parse(f).map_err(|e| ApiError::invalid(format!("filter: {e}")))?),
            None => None,
        };
        let arns: Vec<String> = (0..self.sim.insts.len())
            .filter(|&n| {
                let st = self.sim.insts[n].state;
                matches!(st, InstState::Active | InstState::Draining) && status.is_none_or(|s| s == st)
            })
            .filter(|&n| filter.as_ref().is_none_or(|f| self.sim.cs.matches(n, f)))
            .map(|n| self.sim.insts[n].arn.clone())
            .collect();
        let (arns, next) = page(arns, req, 100, 100)?;
        Ok(paged("containerInstanceArns", arns, next))
    }

    fn list_tasks(&self, req: &Value) -> Result<Value, ApiError> {
        let stopped = match str_of(req, "desiredStatus") {
            None | Some("RUNNING") => false,
            Some("STOPPED") => true,
            Some("PENDING") => false,
            Some(s) => {
                return Err(ApiError::invalid(format!("desiredStatus `{s}` is not RUNNING, PENDING or STOPPED")));
            }
        };
        let service = match str_of(req, "serviceName") {
            Some(r) => Some(
                self.svc_ref(r).ok_or_else(|| ApiError::client("ServiceNotFoundException", "Service not found."))?,
            ),
            None => None,
        };
        let node = match str_of(req, "containerInstance") {
            Some(r) => Some(
                self.inst_ref(r)
                    .ok_or_else(|| ApiError::invalid("The referenced container instance was not found."))?,
            ),
            None => None,
        };
        let family = str_of(req, "family");
        let started_by = str_of(req, "startedBy");
        let candidates: Box<dyn Iterator<Item = usize>> = match (service, node) {
            (Some(s), _) => Box::new(self.sim.svc_live[s].iter().copied()),
            (None, Some(n)) => Box::new(self.sim.node_live[n].iter().copied()),
            _ => Box::new(0..self.sim.tasks.len()),
        };
        let mut arns = vec![];
        for t in candidates {
            let task = &self.sim.tasks[t];
            let is_stopped = matches!(task.state, TState::Stopping | TState::Stopped);
            if is_stopped != stopped || node.is_some_and(|n| task.node != n) {
                continue;
            }
            if let Some(f) = family {
                let fam = match (task.service, task.standalone) {
                    (Some(s), _) => self.family_of(&self.sim.svcs[s].task_def),
                    (None, Some(k)) => self.family_of(&self.standalone_defs[k]),
                    _ => String::new(),
                };
                if fam != f {
                    continue;
                }
            }
            if let Some(b) = started_by {
                let by = match task.service {
                    Some(_) => Some(format!("ecs-svc/{}", task.deployment)),
                    None => self.started_by.get(&t).cloned(),
                };
                if by.as_deref() != Some(b) {
                    continue;
                }
            }
            arns.push(task.arn.as_str());
        }
        let (arns, next) = page(arns, req, 100, 100)?;
        Ok(paged("taskArns", arns, next))
    }

    fn family_of(&self, arn: &str) -> String {
        self.defs.get(arn).map_or(String::new(), |d| d.family.clone())
    }

    fn update_instances_state(&mut self, req: &Value) -> Result<Value, ApiError> {
        let refs = list_of(req, "containerInstances");
        limit("containerInstances", &refs, 10)?;
        let status = match str_of(req, "status") {
            Some("ACTIVE") => InstanceStatus::Active,
            Some("DRAINING") => InstanceStatus::Draining,
            other => {
                return Err(ApiError::invalid(format!(
                    "status {other:?}: a container instance can be set ACTIVE or DRAINING"
                )));
            }
        };
        let (found, failures) = resolve(&refs, |r| self.inst_ref(r));
        if !found.is_empty() {
            let arns = found.iter().map(|&n| self.sim.insts[n].arn.clone()).collect();
            self.sim
                .apply_action(&Action::SetInstanceState {
                    instance_arns: arns,
                    status,
                    reason: "UpdateContainerInstancesState (twin)".into(),
                })
                .map_err(backend_err)?;
        }
        let out: Vec<Value> = found.iter().map(|&n| self.instance_json(n, false)).collect();
        Ok(json!({"containerInstances": out, "failures": failures}))
    }

    fn attributes(&mut self, op: &str, req: &Value) -> Result<Value, ApiError> {
        let list = req.get("attributes").and_then(Value::as_array).cloned().unwrap_or_default();
        if list.is_empty() || list.len() > 10 {
            return Err(ApiError::invalid("attributes must hold 1 to 10 attributes"));
        }
        let mut acts = vec![];
        for a in &list {
            let name =
                a.get("name").and_then(Value::as_str).ok_or_else(|| ApiError::invalid("an attribute needs a name"))?;
            if a.get("targetType").and_then(Value::as_str).is_some_and(|t| t != "container-instance") {
                return Err(ApiError::invalid("the twin keeps attributes on container instances only"));
            }
            let target = a.get("targetId").and_then(Value::as_str).unwrap_or("");
            let n = self
                .inst_ref(target)
                .ok_or_else(|| ApiError::client("TargetNotFoundException", format!("Could not find {target}.")))?;
            let arn = self.sim.insts[n].arn.clone();
            acts.push(if op == "PutAttributes" {
                Action::PutAttribute {
                    instance_arn: arn,
                    name: name.into(),
                    value: a.get("value").and_then(Value::as_str).unwrap_or("").into(),
                }
            } else {
                Action::DeleteAttribute { instance_arn: arn, name: name.into() }
            });
        }
        for a in &acts {
            self.sim.apply_action(a).map_err(backend_err)?;
        }
        Ok(json!({"attributes": list}))
    }

    fn tags(&mut self, op: &str, req: &Value) -> Result<Value, ApiError> {
        let arn = str_of(req, "resourceArn").ok_or_else(|| ApiError::invalid("resourceArn is required"))?.to_string();
        let is_cluster = arn == self.sim.cluster_arn();
        let service =
            if arn.contains(":service/") { self.svc_ref(&arn).map(|s| self.sim.svcs[s].name.clone()) } else { None };
        if !is_cluster && service.is_none() {
            return Err(ApiError::invalid(format!("the twin keeps tags on its cluster and services, not {arn}")));
        }
        match op {
            "ListTagsForResource" => {
                let tags = match &service {
                    Some(name) => &self.sim.svcs[self.svc_ref(name).expect("found")].tags,
                    None => &self.sim.cluster_tags,
                };
                Ok(json!({"tags": tags_json(tags)}))
            }
            "TagResource" => {
                for (key, value) in parse_tags(req) {
                    let a = match &service {
                        Some(s) => Action::TagService { service: s.clone(), key, value },
                        None => Action::TagCluster { key, value },
                    };
                    self.sim.apply_action(&a).map_err(backend_err)?;
                }
                Ok(json!({}))
            }
            _ => {
                for key in list_of(req, "tagKeys") {
                    let a = match &service {
                        Some(s) => Action::UntagService { service: s.clone(), key },
                        None => Action::UntagCluster { key },
                    };
                    self.sim.apply_action(&a).map_err(backend_err)?;
                }
                Ok(json!({}))
            }
        }
    }

    fn register_task_definition(&mut self, req: &Value) -> Result<Value, ApiError> {
        let family = str_of(req, "family").ok_or_else(|| ApiError::client("ClientException", "Family is required."))?;
        if !family.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || family.len() > 255 {
            return Err(ApiError::client("ClientException", "Family contains invalid characters."));
        }
        let containers = req.get("containerDefinitions").and_then(Value::as_array).cloned().unwrap_or_default();
        if containers.is_empty() {
            return Err(ApiError::client("ClientException", "Container list cannot be empty."));
        }
        let network_mode = str_of(req, "networkMode").unwrap_or("bridge").to_string();
        if !["bridge", "host", "awsvpc", "none"].contains(&network_mode.as_str()) {
            return Err(ApiError::client("ClientException", format!("networkMode `{network_mode}` is not valid")));
        }
        let num = |v: Option<&Value>| -> Option<i64> {
            match v? {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
        };
        let (mut cpu, mut mem) = (0i64, 0i64);
        let (mut tcp, mut udp, mut gpus) = (vec![], vec![], 0u32);
        for c in &containers {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() || c.get("image").and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(ApiError::client("ClientException", "Each container needs a name and an image."));
            }
            cpu += num(c.get("cpu")).unwrap_or(0);
            let m = num(c.get("memoryReservation")).or_else(|| num(c.get("memory")));
            if m.is_none() && req.get("memory").is_none() {
                return Err(ApiError::client(
                    "ClientException",
                    format!(
                        "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
                    ),
                ));
            }
            mem += m.unwrap_or(0);
            for p in c.get("portMappings").and_then(Value::as_array).into_iter().flatten() {
                let host = num(p.get("hostPort")).filter(|&h| h > 0);
                let port = if network_mode == "host" { host.or(num(p.get("containerPort"))) } else { host };
                let Some(port) = port.and_then(|p| u16::try_from(p).ok()).filter(|&p| p > 0) else { continue };
                if p.get("protocol").and_then(Value::as_str) == Some("udp") {
                    udp.push(port);
                } else {
                    tcp.push(port);
                }
            }
            for r in c.get("resourceRequirements").and_then(Value::as_array).into_iter().flatten() {
                if r.get("type").and_then(Value::as_str) == Some("GPU") {
                    gpus += num(r.get("value")).unwrap_or(0) as u32;
                }
            }
        }
        tcp.sort_unstable();
        tcp.dedup();
        udp.sort_unstable();
        udp.dedup();
        let revision = self.latest.get(family).copied().unwrap_or(0) + 1;
        let arn = self.sim.ecs_arn("task-definition", &format!("{family}:{revision}"));
        let d = Def {
            arn: arn.clone(),
            family: family.to_string(),
            revision,
            cpu: num(req.get("cpu")).unwrap_or(cpu),
            memory: num(req.get("memory")).unwrap_or(mem),
            host_ports: tcp,
            udp_ports: udp,
            gpus,
            network_mode,
            constraints: parse_constraints(req.get("placementConstraints"))?,
            containers: Value::Array(containers),
            registered_at: self.sim.now,
        };
        self.latest.insert(family.to_string(), revision);
        let out = self.def_json(&d);
        self.defs.insert(arn, d);
        Ok(json!({"taskDefinition": out, "tags": []}))
    }

    fn spec_of_def(d: &Def, group: String, strategy: Vec<Strategy>, constraints: &[Constraint]) -> TaskSpec {
        let mut all = constraints.to_vec();
        all.extend(d.constraints.iter().cloned());
        TaskSpec {
            group,
            cpu: d.cpu,
            memory: d.memory,
            host_ports: d.host_ports.clone(),
            strategy,
            rules: compile(&all),
            needs: TaskNeeds {
                gpus: d.gpus,
                udp_ports: d.udp_ports.clone(),
                awsvpc: d.network_mode == "awsvpc",
                requires: vec![],
                constraints: d.constraints.clone(),
            },
        }
    }

    fn create_service(&mut self, req: &Value) -> Result<Value, ApiError> {
        let name = str_of(req, "serviceName").ok_or_else(|| ApiError::invalid("serviceName is required"))?.to_string();
        if self.svc_ref(&name).is_some() {
            return Err(ApiError::invalid("Creation of service was not idempotent."));
        }
        if str_of(req, "launchType").is_some_and(|l| l != "EC2") || req.get("capacityProviderStrategy").is_some() {
            return Err(ApiError::invalid("the twin simulates the EC2 launch type, without capacity providers"));
        }
        let td = str_of(req, "taskDefinition").ok_or_else(|| ApiError::invalid("taskDefinition is required"))?;
        let d = self.def(td)?.clone();
        let daemon = str_of(req, "schedulingStrategy") == Some("DAEMON");
        let desired = int_of(req, "desiredCount")?.unwrap_or(0);
        if desired < 0 {
            return Err(ApiError::invalid("desiredCount must be 0 or more"));
        }
        if daemon && req.get("placementStrategy").is_some() {
            return Err(ApiError::invalid("Placement strategies are not supported with DAEMON scheduling strategy."));
        }
        let strategy = parse_strategies(req)?;
        let constraints = parse_constraints(req.get("placementConstraints"))?;
        let dc = req.get("deploymentConfiguration");
        let pct = |k: &str, dflt: u32| -> u32 {
            dc.and_then(|c| c.get(k)).and_then(Value::as_i64).map_or(dflt, |v| v.max(0) as u32)
        };
        let (min_default, max_default) = if daemon { (0, 100) } else { (100, 200) };
        let effective = if daemon {
            vec![]
        } else if strategy.is_empty() {
            Strategy::service_default()
        } else {
            strategy.clone()
        };
        let spec = Self::spec_of_def(&d, format!("service:{name}"), effective, &constraints);
        let mut all = constraints.clone();
        all.extend(d.constraints.iter().cloned());
        let svc = Svc {
            name: name.clone(),
            daemon,
            desired: if daemon { 0 } else { desired as u32 },
            scenario_desired: if daemon { 0 } else { desired as u32 },
            desired_by_policy: false,
            strategy,
            constraints: all,
            spec,
            min_healthy: pct("minimumHealthyPercent", min_default),
            max_percent: pct("maximumPercent", max_default),
            start: Millis::secs(40),
            stop: Millis::secs(30),
            utilization: (0.5, 0.5),
            deployment: 1,
            deployment_by_policy: false,
            tags: parse_tags(req).into_iter().collect(),
            unplaced: 0,
            policy_missing: 0,
            place_failures: 0,
            retry_at: Millis(0),
            task_def: d.arn.clone(),
            old_specs: vec![],
        };
        let s = self.sim.add_service(svc);
        Ok(json!({"service": self.service_json(s, false)}))
    }

    fn update_service(&mut self, req: &Value) -> Result<Value, ApiError> {
        let r = str_of(req, "service").ok_or_else(|| ApiError::invalid("service is required"))?;
        let s = self.svc_ref(r).ok_or_else(|| ApiError::client("ServiceNotFoundException", "Service not found."))?;
        let name = self.sim.svcs[s].name.clone();
        if let Some(dc) = req.get("deploymentConfiguration") {
            if let Some(v) = dc.get("minimumHealthyPercent").and_then(Value::as_i64) {
                self.sim.svcs[s].min_healthy = v.max(0) as u32;
            }
            if let Some(v) = dc.get("maximumPercent").and_then(Value::as_i64) {
                self.sim.svcs[s].max_percent = v.max(0) as u32;
            }
        }
        if let Some(desired) = int_of(req, "desiredCount")? {
            if desired < 0 {
                return Err(ApiError::invalid("desiredCount must be 0 or more"));
            }
            if self.sim.svcs[s].daemon {
                return Err(ApiError::invalid("The desired count cannot be set for a DAEMON service."));
            }
            self.sim
                .apply_action(&Action::SetServiceDesired {
                    service: name.clone(),
                    desired: desired as u32,
                    reason: "UpdateService (twin)".into(),
                })
                .map_err(backend_err)?;
        }
        let mut deploy = bool_of(req, "forceNewDeployment").unwrap_or(false);
        if let Some(td) = str_of(req, "taskDefinition") {
            let d = self.def(td)?.clone();
            let svc = &mut self.sim.svcs[s];
            if d.arn != svc.task_def {
                let spec = Self::spec_of_def(&d, svc.spec.group.clone(), svc.spec.strategy.clone(), &svc.constraints);
                let old = std::mem::replace(&mut svc.spec, spec);
                let old_arn = std::mem::replace(&mut svc.task_def, d.arn.clone());
                svc.old_specs.push((svc.deployment, old_arn, old));
                deploy = true;
            }
        }
        if deploy {
            self.sim
                .apply_action(&Action::ForceNewDeployment { service: name, reason: "UpdateService (twin)".into() })
                .map_err(backend_err)?;
        }
        Ok(json!({"service": self.service_json(s, false)}))
    }

    fn standalone(&mut self, req: &Value) -> Result<(usize, String), ApiError> {
        let td = str_of(req, "taskDefinition").ok_or_else(|| ApiError::invalid("taskDefinition is required"))?;
        let d = self.def(td)?.clone();
        if str_of(req, "launchType").is_some_and(|l| l != "EC2") {
            return Err(ApiError::invalid("the twin simulates the EC2 launch type only"));
        }
        let group = str_of(req, "group").map_or_else(|| format!("family:{}", d.family), str::to_string);
        let strategy = parse_strategies(req)?;
        let constraints = parse_constraints(req.get("placementConstraints"))?;
        let spec = Self::spec_of_def(&d, group, strategy, &constraints);
        self.sim.standalone_specs.push(spec);
        self.standalone_defs.push(d.arn.clone());
        Ok((self.sim.standalone_specs.len() - 1, d.arn))
    }

    fn run_task(&mut self, req: &Value) -> Result<Value, ApiError> {
        let count = int_of(req, "count")?.unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(ApiError::invalid("count must be between 1 and 10"));
        }
        let (k, _) = self.standalone(req)?;
        let spec = self.sim.standalone_specs[k].clone();
        let (mut tasks, mut failures) = (vec![], vec![]);
        for _ in 0..count {
            match self.sim.cs.choose(&spec, &mut self.sim.rng) {
                Some(n) => {
                    let t = self.sim.start_task(None, Some(k), n);
                    if let Some(b) = str_of(req, "startedBy") {
                        self.started_by.insert(t, b.to_string());
                    }
                    tasks.push(t);
                }
                None => {
                    failures.push(json!({"reason": self.why_unplaced(&spec)}));
                }
            }
        }
        self.sim.reconcile();
        Ok(json!({"tasks": tasks.iter().map(|&t| self.task_json(t)).collect::<Vec<_>>(), "failures": failures}))
    }

    fn start_task(&mut self, req: &Value) -> Result<Value, ApiError> {
        let refs = list_of(req, "containerInstances");
        if refs.is_empty() || refs.len() > 10 {
            return Err(ApiError::invalid("containerInstances must name 1 to 10 container instances"));
        }
        let (k, _) = self.standalone(req)?;
        let spec = self.sim.standalone_specs[k].clone();
        let (mut tasks, mut failures) = (vec![], vec![]);
        for r in &refs {
            let Some(n) = self.inst_ref(r) else {
                failures.push(json!({"arn": r, "reason": "MISSING"}));
                continue;
            };
            if self.sim.insts[n].state != InstState::Active {
                failures.push(json!({"arn": self.sim.insts[n].arn, "reason": "INACTIVE"}));
            } else if !self.sim.cs.fits(n, &spec) {
                failures.push(json!({"arn": self.sim.insts[n].arn, "reason": self.why_unplaced(&spec)}));
            } else {
                let t = self.sim.start_task(None, Some(k), n);
                if let Some(b) = str_of(req, "startedBy") {
                    self.started_by.insert(t, b.to_string());
                }
                tasks.push(t);
            }
        }
        self.sim.reconcile();
        Ok(json!({"tasks": tasks.iter().map(|&t| self.task_json(t)).collect::<Vec<_>>(), "failures": failures}))
    }

    /// ECS's reason for a task it could not place (the first resource no instance has).
    fn why_unplaced(&self, spec: &TaskSpec) -> &'static str {
        let active: Vec<usize> =
            (0..self.sim.insts.len()).filter(|&n| self.sim.insts[n].state == InstState::Active).collect();
        let nodes = &self.sim.cs.nodes;
        if active.is_empty() {
            "No Container Instances were found in your cluster."
        } else if !active.iter().any(|&n| nodes[n].free.cpu >= spec.cpu) {
            "RESOURCE:CPU"
        } else if !active.iter().any(|&n| nodes[n].free.memory >= spec.memory) {
            "RESOURCE:MEMORY"
        } else if !active.iter().any(|&n| spec.host_ports.iter().all(|p| !nodes[n].ports.contains(p))) {
            "RESOURCE:PORTS"
        } else {
            "MemberOf constraint"
        }
    }
}

fn paged(key: &str, arns: Vec<String>, next: Option<String>) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), json!(arns));
    if let Some(n) = next {
        m.insert("nextToken".into(), json!(n));
    }
    Value::Object(m)
}

/// Each reference resolved by `find`, in order: what was found, and a MISSING failure for each
/// reference that was not (as ECS answers a batch call).
fn resolve<T>(refs: &[String], mut find: impl FnMut(&str) -> Option<T>) -> (Vec<T>, Vec<Value>) {
    let mut found = vec![];
    let mut failures = vec![];
    for r in refs {
        match find(r) {
            Some(x) => found.push(x),
            None => failures.push(json!({"arn": r, "reason": "MISSING"})),
        }
    }
    (found, failures)
}

fn limit(what: &str, refs: &[String], max: usize) -> Result<(), ApiError> {
    if refs.is_empty() {
        return Err(ApiError::invalid(format!("{what} cannot be empty.")));
    }
    if refs.len() > max {
        return Err(ApiError::invalid(format!("{what} can have at most {max} items.")));
    }
    Ok(())
}
