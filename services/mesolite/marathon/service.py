"""The Marathon service object: owns the state, the framework, health checks, the event bus and the tick loop, and
implements every change the API can ask for as "compute the new apps, pods and groups, plan, deploy".

All changes go through :meth:`Marathon.deploy`: copy the current apps/pods/groups, apply the request to the copy,
version and port-assign what changed, plan the steps, refuse (409) if an affected app or pod is locked by a running
deployment unless forced, then persist the new definitions and the deployment together. The tick loop then drives
deployments, keeps run specs that no deployment holds at their instance count (replacing failed, lost and unhealthy
instances), and applies each run spec's ``unreachableStrategy`` to its unreachable instances.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from mesolite.core.store import Store
from mesolite.marathon import groups, instances, pathid, pods, runspec, secrets
from mesolite.marathon.appdef import Invalid
from mesolite.marathon.config import MarathonConfig
from mesolite.marathon.deployments import Runner, build_steps, depths, kill_order, plan_json, step_json
from mesolite.marathon.errors import Locked, NotFound, NotLeading, TooManyDeployments, UnknownTask
from mesolite.marathon.events import EventBus
from mesolite.marathon.groups import AppUpdate, GroupUpdate, Root
from mesolite.marathon.health import HealthChecker
from mesolite.marathon.scheduler import MarathonScheduler, SchedulerConfig
from mesolite.marathon.state import Deployment, State, Task, VersionClock

log = logging.getLogger(__name__)

TICK = 0.25
MARATHON_VERSION = "1.6.322"
# A dry run's answer: the deployment's steps, each a list of actions.
Steps = list[list[dict[str, Any]]]


class Marathon:
    """The leader's work. With ``--zk`` an instance only does it while elected (``become_leader`` … ``step_down``,
    driven by :mod:`mesolite.marathon.election`); alone it leads from ``start`` to ``stop``.

    Each leadership term gets fresh state read from the store and a fresh framework connection, health checker and
    deployment runner: nothing a previous term (or another instance) held in memory is trusted."""

    def __init__(self, config: MarathonConfig, store: Store) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.state = State(store)
        self.events = EventBus()
        self.clock = VersionClock()
        self.started_at = time.time()
        self.elected_at: float | None = None
        # Set while this instance leads with its state loaded: the API serves only then (or proxies to the leader).
        self.loaded = threading.Event()
        self._term_lock = threading.Lock()
        self._leading = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._new_term()

    def _new_term(self) -> None:
        config = self.config
        self.health = HealthChecker(
            self.state, self.lock, self.events.publish, self.kill_task, self.app_in_deployment, self.health_changed
        )
        self.scheduler = MarathonScheduler(
            SchedulerConfig(
                master=config.master,
                hostname=config.hostname,
                framework_name=config.framework_name,
                user=config.mesos_user,
                role=config.mesos_role,
                failover_timeout=config.failover_timeout,
                webui_url=config.webui_url or f"http://{config.hostname}:{config.http_port}",
                max_instances_per_offer=config.max_instances_per_offer,
                decline_offer_duration=config.decline_offer_duration,
                task_launch_timeout=config.task_launch_timeout,
                reconciliation_interval=config.reconciliation_interval,
            ),
            self.state,
            self.lock,
            self.events.publish,
            self.wake,
            self.health.forget,
            self.health_changed,
        )
        self.runner = Runner(self.state, self.kill_task, lambda t, a: bool(self.health.healthy(t, a)))
        self.counters: dict[str, int] = {"deployments": 0, "deployments.dismissed": 0}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run as the only instance (no ``--zk``): lead at once."""
        self.events.start()
        self.become_leader()

    def stop(self) -> None:
        self.step_down()
        self.events.stop()

    @property
    def leading(self) -> bool:
        return self.loaded.is_set()

    def become_leader(self) -> None:
        """Elected: read everything from the store, re-subscribe with the stored framework id (the master then hands
        back the running tasks, which reconciliation confirms), and resume the stored deployments where the tasks
        say they are."""
        with self._term_lock:
            if self._leading:
                return
            with self.lock:
                self.state.reset()
                self.state.load()
                for task in self.state.tasks.values():
                    task.kill_sent = 0.0  # a kill the previous leader sent may have been lost with it: resend now
                self._new_term()
                self._stop = threading.Event()
                self._wake.clear()
            self.events.set_callbacks(self.state.subscribers)
            self.health.start()
            self.scheduler.start()
            self._thread = threading.Thread(target=self._loop, args=(self._stop,), name="marathon-tick", daemon=True)
            self._thread.start()
            self._leading = True
            self.elected_at = time.time()
            self.loaded.set()
            log.info(
                "leading: %d apps, %d tasks, %d deployments, framework %s",
                len(self.state.apps),
                len(self.state.tasks),
                len(self.state.deployments),
                self.state.framework_id,
            )

    def step_down(self) -> None:
        """Leadership lost or given up: stop acting at once. The framework connection is dropped without a teardown,
        so the master keeps the tasks for the next leader; SSE clients are cut off so they reconnect to it."""
        with self._term_lock:
            if not self._leading:
                return
            self.loaded.clear()
            self._leading = False
            self._stop.set()
            self._wake.set()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=10)
            for part in (self.health, self.scheduler):
                try:
                    part.stop()
                except Exception:  # stepping down must complete whatever one part does
                    log.exception("stopping %s failed", type(part).__name__)
            self.events.detach_all()
            with self.lock:
                self.state.reset()
            self.elected_at = None
            log.warning("no longer leading")

    def require_leadership(self) -> None:
        """Under the lock, before any change: a request that raced a lost election must not write the new
        leader's state."""
        if not self.loaded.is_set():
            raise NotLeading("Marathon is not the leader; retry against the current leader")

    def wake(self) -> None:
        self._wake.set()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if stop.is_set():
                return
            try:
                self.tick()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("tick failed")

    # ------------------------------------------------------------------ the tick

    def tick(self) -> None:
        with self.lock:
            if not self.loaded.is_set():
                return
            self._age_unreachable(time.time())
            demand: dict[str, int] = {}
            locked: set[str] = set()
            for deployment in list(self.state.deployments.values()):
                locked.update(deployment.affected_apps)
                for spec_id, count in self._advance(deployment).items():
                    demand[spec_id] = demand.get(spec_id, 0) + count
            for spec_id, spec in self.state.specs().items():
                if spec_id not in locked:
                    need = self._keep_scaled(spec)
                    if need:
                        demand[spec_id] = need
            self.scheduler.set_demand(demand)
        self.scheduler.send_kills()
        self.scheduler.revive_or_suppress()
        self.scheduler.maybe_reconcile()

    def _advance(self, deployment: Deployment) -> dict[str, int]:
        while True:
            if deployment.current_step >= len(deployment.steps):
                self._finish(deployment)
                return {}
            demand = self.runner.advance(deployment)
            if not self.runner.step_done(deployment):
                return demand
            self.events.publish(
                "deployment_step_success", plan=plan_json(deployment), currentStep=step_json(deployment)
            )
            for action in deployment.current_actions():
                if action["action"] == "StopApplication":
                    self.events.publish("app_terminated_event", appId=action["app"])
            deployment.current_step += 1
            self.state.save_deployment(deployment)
            if deployment.current_step < len(deployment.steps):
                self.events.publish("deployment_info", plan=plan_json(deployment), currentStep=step_json(deployment))

    def _finish(self, deployment: Deployment) -> None:
        self.state.delete_deployment(deployment.id)
        self.events.publish("deployment_success", id=deployment.id, plan=plan_json(deployment))

    def _keep_scaled(self, spec: dict[str, Any]) -> int:
        """No deployment holds this run spec: replace what died, trim what is too much. An instance back from an
        unreachable agent after its replacement started makes one too many: Marathon's ``ScalingProposition``
        kills the replacement (killSelection ``YOUNGEST_FIRST``), so the returning instance keeps running."""
        active = [t for t in self.state.app_tasks(spec["id"]) if t.active]
        wanted = runspec.instances(spec)
        if len(active) > wanted:

            def healthy(task: Task) -> bool:
                return bool(self.health.healthy(task, spec))

            for task in kill_order(active, runspec.kill_selection(spec), healthy)[: len(active) - wanted]:
                self.kill_task(task, "scale: too many instances")
            return 0
        return wanted - len(active)

    def _age_unreachable(self, now: float) -> None:
        """``unreachableStrategy``: an instance unreachable for ``inactiveAfterSeconds`` stops counting (so it is
        replaced); after ``expungeAfterSeconds`` it is forgotten (and killed as unknown if it ever comes back).
        ``"disabled"``: it waits for its agent however long that takes."""
        for task in list(self.state.tasks.values()):
            if task.unreachable_since is None:
                continue
            strategy = runspec.unreachable(self.state.spec(task.app_id))
            if strategy == "disabled":
                continue
            elapsed = now - task.unreachable_since
            if not task.inactive and elapsed >= float(strategy["inactiveAfterSeconds"]):
                task.inactive = True
                self.state.save_task(task)
                self.scheduler.updates.changed(task)
            if elapsed >= float(strategy["expungeAfterSeconds"]):
                self.state.expunge_task(task.id)
                self.health.forget(task.id)
                self.scheduler.forget_unreachable(task)

    def health_changed(self, task: Task) -> None:
        """Under the lock, after a health result or status update: ``instance_health_changed_event`` when the
        health (None while unknown) of an instance whose run spec has health checks changed."""
        spec = self.state.spec(task.app_id)
        if spec is None or not (spec.get("healthChecks") or (runspec.is_pod(spec) and pods.has_health_checks(spec))):
            return
        healthy = self.health.healthy(task, spec)
        if healthy == task.last_health:
            return
        task.last_health = healthy
        self.events.publish(
            "instance_health_changed_event",
            instanceId=task.id,
            runSpecId=task.app_id,
            runSpecVersion=task.version,
            healthy=healthy,
        )

    def kill_task(self, task: Task, reason: str) -> None:
        self.scheduler.kill(task, reason)
        self._wake.set()

    def app_in_deployment(self, app_id: str) -> bool:
        with self.lock:
            return any(app_id in d.affected_apps for d in self.state.deployments.values())

    def _dismiss(self, deployment: Deployment, reason: str) -> None:
        """A running deployment stopped before it finished (cancelled, or overridden by a forced one): its current
        step fails, then the deployment."""
        self.state.delete_deployment(deployment.id)
        plan = plan_json(deployment)
        self.events.publish("deployment_step_failure", plan=plan, currentStep=step_json(deployment))
        self.events.publish("deployment_failed", id=deployment.id, plan=plan, reason=reason)

    # ------------------------------------------------------------------ deploying changes

    def deploy(
        self,
        change: Callable[[Root], None],
        force: bool = False,
        dry_run: bool = False,
        group_version_of: str | None = None,
    ) -> Deployment | Steps:
        with self.lock:
            self.require_leadership()
            root = Root(self.state)
            change(root)
            for app_id, app in root.apps.items():
                if self.state.apps.get(app_id) is not app and (problems := secrets.errors(app, self.config.features)):
                    raise Invalid(problems)
            version = self.clock.next()
            port_range = (self.config.local_port_min, self.config.local_port_max)
            groups.finalize(root, self.state.apps, self.state.pods, version, port_range)
            groups.ensure_groups(root, version)
            original = self.state.specs()
            target = {**root.apps, **root.pods}
            placement = {**root.app_group, **{p: pathid.parent(p) for p in root.pods}}
            depths(target, root.groups, placement)
            steps, affected = build_steps(
                {a: original[a] for a in original if target.get(a) is not original[a]},
                {a: spec for a, spec in target.items() if original.get(a) is not spec},
                root.groups,
                placement,
                root.restart,
                root.kills,
            )
            if dry_run:
                return steps
            conflicts = [d for d in self.state.deployments.values() if set(d.affected_apps) & set(affected)]
            if conflicts and not force:
                raise Locked([d.id for d in conflicts])
            if len(self.state.deployments) - len(conflicts) >= self.config.max_running_deployments:
                self.counters["deployments.dismissed"] += 1
                raise TooManyDeployments(self.config.max_running_deployments)
            for deployment in conflicts:
                self._dismiss(deployment, "overridden by a forced deployment")
            deployment = Deployment(
                id=str(uuid.uuid4()),
                version=version,
                affected_apps=affected,
                steps=steps,
                original={a: original.get(a) for a in affected},
                target={a: target.get(a) for a in affected},
                affected_pods=[a for a in affected if a in root.pods or a in self.state.pods],
            )
            self._commit(root, version)
            self.state.save_deployment(deployment)
            self.counters["deployments"] += 1
            for spec_id in affected:
                self.scheduler.reset_delay(spec_id)
            if group_version_of is not None:
                self.state.put_group_version(group_version_of, version, groups.snapshot(self.state, group_version_of))
            self.events.publish("group_change_success", groupId="/", version=version)
            self.events.publish("deployment_info", plan=plan_json(deployment), currentStep=step_json(deployment))
        self.wake()
        return deployment

    def _commit(self, root: Root, version: str) -> None:
        for app_id in [a for a in self.state.apps if a not in root.apps]:
            self.state.delete_app(app_id)
        for app_id, app in root.apps.items():
            if self.state.apps.get(app_id) is not app or self.state.app_group.get(app_id) != root.app_group[app_id]:
                self.state.put_app(app, root.app_group[app_id])
        for pod_id in [p for p in self.state.pods if p not in root.pods]:
            self.state.delete_pod(pod_id)
        for pod_id, pod in root.pods.items():
            if self.state.pods.get(pod_id) is not pod:
                self.state.put_pod(pod)
        for group_id in [g for g in self.state.groups if g not in root.groups]:
            self.state.delete_group(group_id)
        for group_id, group in root.groups.items():
            if self.state.groups.get(group_id) != group:
                self.state.put_group({**group, "version": version})

    # ------------------------------------------------------------------ deployments API

    def cancel_deployment(self, deployment_id: str, force: bool) -> Deployment | None:
        with self.lock:
            self.require_leadership()
            deployment = self.state.deployments.get(deployment_id)
            if deployment is None:
                raise NotFound.deployment(deployment_id)
            if force:
                self._dismiss(deployment, "cancelled")
                self.wake()
                return None

            def revert(root: Root) -> None:
                for spec_id in deployment.affected_apps:
                    before = deployment.original.get(spec_id)
                    root.remove_app(spec_id)
                    root.pods.pop(spec_id, None)
                    if before is not None:
                        restored = copy.deepcopy(before)
                        restored.pop("version", None)
                        if runspec.is_pod(restored):
                            root.pods[spec_id] = restored
                        else:
                            root.put_app(restored)

            result = self.deploy(revert, force=True)
            assert isinstance(result, Deployment)
            return result

    # ------------------------------------------------------------------ the changes the API asks for
    # Each takes parsed, typed arguments and raises domain errors (errors.py); the semantics are in groups.py.

    def create_app(self, app: dict[str, Any], force: bool = False) -> Deployment:
        return self._deployed(lambda root: groups.create_app(root, app), force)

    def update_apps(self, updates: list[AppUpdate], force: bool = False, must_exist: bool = False) -> Deployment:
        """PUT or PATCH of one app or several, as one deployment; PATCH (``must_exist``) never creates."""

        def change(root: Root) -> None:
            for update in updates:
                groups.update_app(root, update, self.state.app_version, must_exist)

        return self._deployed(change, force)

    def delete_app(self, app_id: str, force: bool = True) -> Deployment:
        return self._deployed(lambda root: groups.delete_app(root, app_id), force)

    def restart_app(self, app_id: str, force: bool = False) -> Deployment:
        return self._deployed(lambda root: groups.restart_app(root, app_id), force)

    def kill_and_scale(self, kills: dict[str, list[str]]) -> Deployment:
        """Kill tasks and scale their apps down by as many; it overrides any deployment holding those apps."""
        return self._deployed(lambda root: groups.kill_and_scale(root, kills), force=True)

    def kill_tasks(self, tasks: list[Task], reason: str) -> None:
        with self.lock:
            for task in tasks:
                self.kill_task(task, reason)

    def tasks_by_id(self, ids: list[str]) -> list[Task]:
        with self.lock:
            missing = next((i for i in ids if i not in self.state.tasks or self.state.tasks[i].containers), None)
            if missing is not None:
                raise UnknownTask(missing)
            return [self.state.tasks[i] for i in ids]

    def create_group(self, update: GroupUpdate, force: bool = False) -> Deployment:
        return self._deployed(lambda root: groups.create_group(root, update), force, group_version_of=update.id)

    def update_group(self, update: GroupUpdate, force: bool = False, dry_run: bool = False) -> Deployment | Steps:
        return self.deploy(
            lambda root: groups.apply_update(root, update), force=force, dry_run=dry_run, group_version_of=update.id
        )

    def scale_group(
        self, group_id: str, factor: float, force: bool = False, dry_run: bool = False
    ) -> Deployment | Steps:
        return self.deploy(
            lambda root: groups.scale_group(root, group_id, factor),
            force=force,
            dry_run=dry_run,
            group_version_of=group_id,
        )

    def rollback_group(
        self, group_id: str, version: str, force: bool = False, dry_run: bool = False
    ) -> Deployment | Steps:
        with self.lock:
            saved = self.state.group_version(group_id, version)
        if saved is None:
            raise NotFound.group(group_id, version)
        return self.deploy(
            lambda root: groups.restore(root, group_id, saved), force=force, dry_run=dry_run, group_version_of=group_id
        )

    def delete_group(self, group_id: str, force: bool = False) -> Deployment:
        return self._deployed(lambda root: groups.delete_group(root, group_id), force)

    def create_pod(self, pod: dict[str, Any], force: bool = False) -> Deployment:
        return self._deployed(lambda root: groups.create_pod(root, pod), force)

    def update_pod(self, pod: dict[str, Any], force: bool = False) -> Deployment:
        return self._deployed(lambda root: groups.update_pod(root, pod), force)

    def delete_pod(self, pod_id: str, force: bool = False) -> Deployment:
        return self._deployed(lambda root: groups.delete_pod(root, pod_id), force)

    def kill_instances(self, pod_id: str, instance_ids: list[str]) -> list[dict[str, Any]]:
        """``DELETE /v2/pods/{id}::instances``: kill these instances (they are replaced: the count stays)."""
        with self.lock:
            self.require_leadership()
            pod = self.state.pods.get(pod_id)
            if pod is None:
                raise NotFound.pod(pod_id)
            known = {t.id: t for t in self.state.app_tasks(pod_id)}
            doomed = [known[i] for i in instance_ids if i in known]
            for task in doomed:
                self.kill_task(task, "killed over the API")
            return [instances.instance_json(t, pod) for t in doomed]

    def _deployed(self, change: Callable[[Root], None], force: bool, group_version_of: str | None = None) -> Deployment:
        result = self.deploy(change, force=force, group_version_of=group_version_of)
        assert isinstance(result, Deployment)
        return result

    def reset_delay(self, app_id: str) -> None:
        """``DELETE /v2/queue/{app}/delay``: launch again now, whatever the backoff says."""
        with self.lock:
            if app_id not in self.state.apps:
                raise NotFound.app(app_id)
            self.scheduler.reset_delay(app_id)
        self.wake()

    def set_callback(self, url: str, subscribed: bool) -> None:
        """Add or remove an ``--event_subscriber http_callback`` URL (stored, so a new leader keeps sending)."""
        with self.lock:
            urls = list(self.state.subscribers)
            if subscribed and url not in urls:
                urls.append(url)
            elif not subscribed and url in urls:
                urls.remove(url)
            self.state.set_subscribers(urls)
            self.events.set_callbacks(urls)
