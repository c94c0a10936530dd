"""moto served on 127.0.0.1 for ballast's integration tests, with the workarounds the tests
need (reference/moto-notes.md). Nothing here changes what ballast sends; it makes the
emulator answer as ECS would.

1. Task containers' cpu/memory are served as strings (the ECS model; the Rust SDK is strict).
2. RegisterContainerInstance honours totalResources (real instance sizes), and tasks stay
   RUNNING until stopped (moto advances a task one state per describe by default), and
   services keep their deployment configuration and placement strategy and constraints.
3. UpdateTaskProtection / GetTaskProtection, which moto lacks, kept in a table; ListTasks
   honours `serviceName` (moto ignores it): the tasks of group "service:NAME".
4. A tiny service scheduler, since moto schedules nothing: every 0.2 s each REPLICA service's
   tasks (group "service:NAME") are brought to its desired count on ACTIVE instances with
   room (fewest tasks of the service first), tasks on DRAINING instances are replaced
   elsewhere and then stopped, and a scale-in stops unprotected tasks only, from the
   instance with most of the service's tasks. Every request and every scheduler step runs
   under one lock, so the scheduler never races a request.

usage: python3 server.py PORT
"""

import datetime
import sys
import threading
import time

from moto.ecs import models as ecs_models
from moto.moto_api import state_manager
from moto.ecs.responses import EC2ContainerServiceResponse as ECSResponse
from moto.core.responses import ActionResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

LOCK = threading.RLock()
PROTECTION = {}  # task arn -> expiry (datetime) while protected

# 1. Strings for container cpu/memory.
_container_init = ecs_models.Container.__init__


def _container_init_str(self, task_def):
    _container_init(self, task_def)
    for field in ("cpu", "memory"):
        v = getattr(self, field, None)
        if v is not None:
            setattr(self, field, str(v))


ecs_models.Container.__init__ = _container_init_str

# 2. totalResources.
_register = ECSResponse.register_container_instance


def _register_sized(self):
    result = _register(self)
    total = {r["name"]: r for r in (self._get_param("totalResources") or [])}
    ci = result.result["containerInstance"] if hasattr(result, "result") else None
    if ci is None:
        return result
    for res_list in (ci.registered_resources, ci.remaining_resources):
        for r in res_list:
            if r["name"] in ("CPU", "MEMORY") and r["name"] in total:
                r["integerValue"] = int(total[r["name"]].get("integerValue", r["integerValue"]))
    return result


ECSResponse.register_container_instance = _register_sized


# 2b. Services keep the deploymentConfiguration, placementStrategy and placementConstraints
# they were created with (moto drops them; ballast plans by them).
_create_service = ECSResponse.create_service


def _create_service_kept(self):
    result = _create_service(self)
    svc = result.result["service"] if hasattr(result, "result") else None
    if svc is not None:
        for param, attr in (
            ("deploymentConfiguration", "deployment_configuration"),
            ("placementStrategy", "placement_strategy"),
            ("placementConstraints", "placement_constraints"),
        ):
            value = self._get_param(param)
            if value:
                setattr(svc, attr, value)
    return result


ECSResponse.create_service = _create_service_kept


# 3. Task protection.
def _protected(arn):
    exp = PROTECTION.get(arn)
    return exp is not None and exp > datetime.datetime.now(datetime.timezone.utc)


def _protection_entry(arn):
    exp = PROTECTION.get(arn)
    entry = {"taskArn": arn, "protectionEnabled": _protected(arn)}
    if _protected(arn):
        entry["expirationDate"] = exp
    return entry


def update_task_protection(self):
    tasks = self._get_param("tasks") or []
    enabled = bool(self._get_param("protectionEnabled"))
    minutes = int(self._get_param("expiresInMinutes") or 120)
    for arn in tasks:
        if enabled:
            PROTECTION[arn] = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
        else:
            PROTECTION.pop(arn, None)
    return ActionResult({"protectedTasks": [_protection_entry(a) for a in tasks], "failures": []})


def get_task_protection(self):
    tasks = self._get_param("tasks") or []
    return ActionResult({"protectedTasks": [_protection_entry(a) for a in tasks], "failures": []})


ECSResponse.update_task_protection = update_task_protection
ECSResponse.get_task_protection = get_task_protection

# 3b. ListTasks with serviceName: the service's tasks (ECS lists the tasks the service
# started; here, the tasks of its group).
_backend_list_tasks = ecs_models.EC2ContainerServiceBackend.list_tasks


def _list_tasks_by_service(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                           service_name=None, desiredStatus=None):
    tasks = _backend_list_tasks(self, cluster_str, container_instance, family, started_by, None, desiredStatus)
    if service_name:
        name = service_name.rsplit("/", 1)[-1]
        tasks = [t for t in tasks if getattr(t, "group", None) == "service:" + name]
    return tasks


ecs_models.EC2ContainerServiceBackend.list_tasks = _list_tasks_by_service


# 4. The scheduler.
def _remaining(ci, name):
    return next(r["integerValue"] for r in ci.remaining_resources if r["name"] == name)


def _fits(ci, req):
    return _remaining(ci, "CPU") >= req.get("CPU", 0) and _remaining(ci, "MEMORY") >= req.get("MEMORY", 0)


def _schedule_service(backend, cluster, svc):
    group = f"service:{svc.name}"
    tasks = [t for t in backend.tasks.get(cluster, {}).values() if t.group == group and t.desired_status == "RUNNING"]
    instances = backend.container_instances.get(cluster, {})
    by_arn = {ci.container_instance_arn: ci for ci in instances.values()}
    active = [ci for ci in instances.values() if ci.status == "ACTIVE"]
    td = backend.describe_task_definition(svc.task_definition)
    req = backend._calculate_task_resource_requirements(td)

    def count_on(ci):
        return sum(1 for t in tasks if t.container_instance_arn == ci.container_instance_arn)

    def start_one():
        room = [ci for ci in active if _fits(ci, req)]
        if not room:
            return False
        ci = min(room, key=lambda c: (count_on(c), c.registered_at))
        new = backend.start_task(cluster, svc.task_definition, [ci.container_instance_arn], {}, f"ecs-svc/{svc.name}", None, group)
        tasks.extend(new)
        return True

    # Replace tasks on DRAINING instances: start elsewhere first, then stop the old one.
    for t in list(tasks):
        ci = by_arn.get(t.container_instance_arn)
        if ci is not None and ci.status == "DRAINING":
            if not start_one():
                break
            backend.stop_task(cluster, t.task_arn, "Task stopped because the container instance is DRAINING")
            tasks.remove(t)
    while len(tasks) < svc.desired_count:
        if not start_one():
            break
    while len(tasks) > svc.desired_count:
        victims = [t for t in tasks if not _protected(t.task_arn)]
        if not victims:
            break
        busiest = max(victims, key=lambda t: sum(1 for x in tasks if x.container_instance_arn == t.container_instance_arn))
        backend.stop_task(cluster, busiest.task_arn, "Scaling activity initiated by (deployment)")
        tasks.remove(busiest)
    for t in tasks:
        t.last_status = "RUNNING"


def _scheduler():
    while True:
        time.sleep(0.2)
        with LOCK:
            try:
                for regions in ecs_models.ecs_backends.values():
                    for backend in regions.values():
                        for svc in list(backend.services.values()):
                            if svc.status == "ACTIVE" and getattr(svc, "scheduling_strategy", "REPLICA") != "DAEMON":
                                _schedule_service(backend, svc.cluster_name, svc)
            except Exception as e:  # keep serving; a test will see the state
                print(f"scheduler: {e!r}", file=sys.stderr)


def main():
    port = int(sys.argv[1])
    # Tasks stay RUNNING until stopped (moto otherwise advances them one state per describe).
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    app = DomainDispatcherApplication(create_backend_app)

    def locked(environ, start_response):
        with LOCK:
            return list(app(environ, start_response))

    threading.Thread(target=_scheduler, daemon=True).start()
    run_simple("127.0.0.1", port, locked, threaded=True)


if __name__ == "__main__":
    main()
