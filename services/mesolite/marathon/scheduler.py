"""Marathon as a Mesos framework: the launch queue, offer matching, status updates, kills, backoff, reconciliation.

The launch queue is level-triggered: every tick the service tells the scheduler how many instances each app or pod
still needs (``set_demand``); offers are matched against that, instances are recorded (and persisted) as staging
*before* the ACCEPT goes out, so a crash between the two can only leave an instance Marathon knows and the master
does not — which reconciliation then reports as gone, and the queue relaunches. An app instance is a LAUNCH of one
TaskInfo; a pod instance a LAUNCH_GROUP for the DEFAULT executor (``taskgroup.py``).

Offers with nothing to launch are declined for ``--decline_offer_duration`` and the framework suppresses; any new
demand revives. Launch failures (TASK_FAILED, TASK_FINISHED, TASK_ERROR) grow the run spec's backoff delay:
``backoffSeconds × backoffFactor^n`` capped at ``maxLaunchDelaySeconds``.

The framework is PARTITION_AWARE: tasks on an agent the master lost are TASK_UNREACHABLE, not TASK_LOST, and keep
running when it comes back. The master does not announce a returning agent's tasks, so while any task is
unreachable (or was given up as such not long ago) it is reconciled every few seconds: the answer TASK_RUNNING is
how Marathon learns it is back.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesolite.core.scheduler_driver import CallFailed, SchedulerDriver
from mesolite.marathon import appdef, constraints, instances, pathid, runspec, taskgroup, taskinfo
from mesolite.marathon.offers import OfferResources, fit, fit_pod
from mesolite.marathon.state import State, Task, gone, iso
from mesolite.marathon.updates import UpdateProcessor

log = logging.getLogger(__name__)

KNOWN_VALUE_TTL = 60.0
# How often tasks known (or recently given up) as unreachable are reconciled, and for how long an expunged one is.
UNREACHABLE_RECONCILE_SECONDS = 3.0
FORGET_EXPUNGED_SECONDS = 3600.0


@dataclass
class Backoff:
    delay: float = 0.0
    until: float = 0.0
    last_failure: float = 0.0

    def time_left(self, now: float) -> float:
        return max(0.0, self.until - now)


@dataclass
class OfferStats:
    processed: int = 0
    unused: int = 0
    last_unused_at: str | None = None
    last_used_at: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)

    def json(self) -> dict[str, Any]:
        reasons = [
            "UnfulfilledRole",
            "UnfulfilledConstraint",
            "NoCorrespondingReservationFound",
            "AgentMaintenance",
            "InsufficientCpus",
            "InsufficientMemory",
            "InsufficientDisk",
            "InsufficientGpus",
            "InsufficientPorts",
            "DeclinedScarceResources",
        ]
        summary = [{"reason": r, "declined": self.reasons.get(r, 0), "processed": self.processed} for r in reasons]
        return {
            "processedOffersCount": self.processed,
            "unusedOffersCount": self.unused,
            "lastUnusedOfferAt": self.last_unused_at,
            "lastUsedOfferAt": self.last_used_at,
            "rejectSummaryLastOffers": summary,
            "rejectSummaryLaunchAttempt": summary,
        }


@dataclass
class SchedulerConfig:
    master: str
    hostname: str
    framework_name: str = "marathon"
    user: str = ""
    role: str = "*"
    failover_timeout: float = 604800.0
    webui_url: str | None = None
    max_instances_per_offer: int = 5
    decline_offer_duration: float = 120.0
    task_launch_timeout: float = 300.0
    reconciliation_interval: float = 600.0


class MarathonScheduler:
    def __init__(
        self,
        config: SchedulerConfig,
        state: State,
        lock: threading.RLock,
        publish: Callable[..., Any],
        wake: Callable[[], None],
        forget_health: Callable[[str], None],
        health_changed: Callable[[Task], None] = lambda task: None,
    ) -> None:
        self.config = config
        self.state = state
        self.lock = lock
        self.publish = publish
        self.wake = wake
        self.forget_health = forget_health
        self.demand: dict[str, int] = {}
        self.queue_since: dict[str, str] = {}
        self.backoff: dict[str, Backoff] = {}
        self.offer_stats: dict[str, OfferStats] = {}
        self.known_values: dict[str, dict[str, float]] = {}
        self.suppressed = False
        self._last_revive = 0.0
        self._revive_pending = False
        self._last_reconcile = 0.0
        self._last_unreachable_reconcile = 0.0
        # Mesos task id -> (agent id, when) of instances given up as unreachable: if their agent comes back,
        # reconciliation says they run, and as unknown tasks they are killed.
        self.expunged_unreachable: dict[str, tuple[str, float]] = {}
        self.metrics: Counter[str] = Counter()
        self.updates = UpdateProcessor(state, publish, self._note_failure, forget_health, health_changed, self.metrics)
        info: dict[str, Any] = {
            "user": config.user,
            "name": config.framework_name,
            "failover_timeout": config.failover_timeout,
            "checkpoint": True,
            "hostname": config.hostname,
            "roles": [config.role],
            # TASK_KILLING_STATE: a task being killed shows as TASK_KILLING, so load balancers drain it first.
            # PARTITION_AWARE: TASK_UNREACHABLE instead of TASK_LOST, for the run specs' unreachableStrategy.
            "capabilities": [{"type": "MULTI_ROLE"}, {"type": "TASK_KILLING_STATE"}, {"type": "PARTITION_AWARE"}],
        }
        if config.webui_url:
            info["webui_url"] = config.webui_url
        # The driver keeps the framework id in the state's store (``framework/id``), where State loads it from.
        self.driver = SchedulerDriver(
            config.master, info, state.store, on_event=self._on_event, on_subscribed=self._on_subscribed
        )

    def start(self) -> None:
        self.driver.start()

    def stop(self) -> None:
        self.driver.stop()

    @property
    def connected(self) -> bool:
        return self.driver.connected

    # ------------------------------------------------------------------ subscription

    def _on_subscribed(self, framework_id: str) -> None:
        with self.lock:
            if self.state.framework_id != framework_id:
                self.state.set_framework_id(framework_id)
            self.suppressed = False
            known = self._known_tasks()
        self.reconcile(known)
        self.wake()

    def _known_tasks(self) -> list[tuple[str, str | None]]:
        return [(tid, t.agent_id or None) for t in self.state.tasks.values() for tid in t.mesos_task_ids]

    def reconcile(self, known: list[tuple[str, str | None]] | None = None) -> None:
        """Explicit reconciliation of every task we know, then implicit to learn of tasks we do not."""
        self._last_reconcile = time.time()
        try:
            if known:
                self.driver.reconcile(known)
            self.driver.reconcile([])
        except CallFailed as exc:
            log.info("reconciliation deferred: %s", exc)

    def maybe_reconcile(self) -> None:
        if not self.connected:
            return
        now = time.time()
        if now - self._last_reconcile > self.config.reconciliation_interval:
            with self.lock:
                known = self._known_tasks()
            self.reconcile(known)
            return
        if now - self._last_unreachable_reconcile < UNREACHABLE_RECONCILE_SECONDS:
            return
        self._last_unreachable_reconcile = now
        with self.lock:
            for task_id, (_, since) in list(self.expunged_unreachable.items()):
                if now - since > FORGET_EXPUNGED_SECONDS:
                    self.expunged_unreachable.pop(task_id, None)
            lost = [
                (tid, t.agent_id or None)
                for t in self.state.tasks.values()
                if t.unreachable_since is not None
                for tid in t.mesos_task_ids
            ]
            lost += [(tid, agent or None) for tid, (agent, _) in self.expunged_unreachable.items()]
        if lost:
            try:
                self.driver.reconcile(lost)
            except CallFailed as exc:
                log.debug("reconciling unreachable tasks deferred: %s", exc)

    def forget_unreachable(self, task: Task) -> None:
        """Under the lock: an unreachable instance expunged by its strategy; reconcile it a while longer."""
        now = time.time()
        for tid in task.mesos_task_ids:
            self.expunged_unreachable[tid] = (task.agent_id, now)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "OFFERS":
            offers = (event.get("offers") or {}).get("offers") or []
            self.metrics["mesos.offers.incoming"] += len(offers)
            self._on_offers(offers)
        elif kind == "UPDATE":
            self._on_update(event["update"]["status"])
        elif kind == "MESSAGE":
            message = event.get("message") or {}
            try:
                data = base64.b64decode(message.get("data") or "")
            except ValueError:
                data = b""
            self.publish(
                "framework_message_event",
                slaveId=(message.get("agent_id") or {}).get("value"),
                executorId=(message.get("executor_id") or {}).get("value"),
                # Marathon writes the bytes as a JSON array of (signed, Java) byte values: ``ByteArrayFormat``.
                message=[b - 256 if b > 127 else b for b in data],
            )

    # ------------------------------------------------------------------ demand, revive, backoff

    def set_demand(self, demand: dict[str, int]) -> None:
        """Called by the tick under the lock: instances each app still needs launched."""
        grew = any(count > self.demand.get(app_id, 0) for app_id, count in demand.items())
        now_iso = iso()
        for app_id, count in demand.items():
            if count > 0 and app_id not in self.queue_since:
                self.queue_since[app_id] = now_iso
        for app_id in list(self.queue_since):
            if demand.get(app_id, 0) <= 0:
                self.queue_since.pop(app_id, None)
                self.offer_stats.pop(app_id, None)
        self.demand = {a: c for a, c in demand.items() if c > 0}
        if grew or (self.demand and self.suppressed):
            self._revive_pending = True

    def revive_or_suppress(self) -> None:
        """Outside the lock: one REVIVE per second at most while there is new demand, SUPPRESS when none."""
        now = time.monotonic()
        try:
            if self._revive_pending and now - self._last_revive >= 1.0:
                self._revive_pending = False
                self._last_revive = now
                self.driver.revive()
                self.suppressed = False
                self.metrics["mesos.calls.revive"] += 1
            elif not self.demand and not self.suppressed and now - self._last_revive > 5.0:
                self.driver.suppress()
                self.suppressed = True
                self.metrics["mesos.calls.suppress"] += 1
        except CallFailed as exc:
            log.debug("revive/suppress deferred: %s", exc)

    def delay_of(self, app_id: str) -> Backoff | None:
        return self.backoff.get(app_id)

    def reset_delay(self, app_id: str) -> None:
        self.backoff.pop(app_id, None)
        self._revive_pending = True

    def _note_failure(self, spec: dict[str, Any]) -> None:
        now = time.time()
        first, factor, maximum = runspec.backoff(spec)
        backoff = self.backoff.setdefault(spec["id"], Backoff())
        if backoff.delay and now > backoff.last_failure + maximum:
            backoff.delay = 0.0
        if backoff.delay == 0.0:
            backoff.delay = first
        else:
            backoff.delay = min(backoff.delay * factor, maximum)
        backoff.last_failure = now
        backoff.until = now + backoff.delay

    # ------------------------------------------------------------------ offers

    def _on_offers(self, offers: list[dict[str, Any]]) -> None:
        launches: list[tuple[dict[str, Any], list[dict[str, Any]], list[Task]]] = []
        declines: list[str] = []
        with self.lock:
            now = time.time()
            for offer in offers:
                self._learn(offer, now)
            for offer in offers:
                if under_maintenance(offer, now):
                    declines.append(offer["id"]["value"])  # Marathon's maintenance mode: no new task there
                    continue
                tasks, operations = self._match(offer, now)
                if operations:
                    launches.append((offer, operations, tasks))
                else:
                    declines.append(offer["id"]["value"])
            wanting = bool(self.demand)
        for offer, operations, tasks in launches:
            try:
                self.driver.accept([offer["id"]["value"]], operations, 1.0)
                self.metrics["mesos.offers.used"] += 1
                self.metrics["tasks.launched"] += sum(len(t.mesos_task_ids) for t in tasks)
                for operation in operations:
                    kind = "launch" if operation["type"] == "LAUNCH" else "launch-group"
                    self.metrics[f"mesos.offer-operations.{kind}"] += 1
            except CallFailed as exc:
                log.warning("launch on %s failed: %s", offer.get("hostname"), exc)
                with self.lock:
                    for task in tasks:
                        self.state.expunge_task(task.id)
                self.wake()
        if declines:
            refuse = 1.0 if wanting else self.config.decline_offer_duration
            try:
                self.driver.decline(declines, refuse)
                self.metrics["mesos.offers.declined"] += len(declines)
            except CallFailed as exc:
                log.debug("decline failed: %s", exc)
            if not wanting:
                with self.lock:
                    # Demand that arrived while we declined may already have sent its REVIVE, which the master
                    # then saw before this long filter: revive once more, or the offer stays away for the filter.
                    if self.demand:
                        self._revive_pending = True
                        self._last_revive = 0.0
                self.wake()
        if launches:
            self.wake()

    def _learn(self, offer: dict[str, Any], now: float) -> None:
        """Remember which attribute values exist (GROUP_BY balances over values it has seen offered)."""
        for name, value in self._placement(offer).items():
            self.known_values.setdefault(name, {})[value] = now

    def _known(self, now: float) -> dict[str, set[str]]:
        return {
            name: {v for v, seen in values.items() if now - seen < KNOWN_VALUE_TTL}
            for name, values in self.known_values.items()
        }

    @staticmethod
    def _placement(offer: dict[str, Any]) -> dict[str, str]:
        placement = {"hostname": str(offer.get("hostname", ""))}
        for attribute in offer.get("attributes") or []:
            kind = attribute.get("type")
            if kind == "TEXT":
                placement[attribute["name"]] = str((attribute.get("text") or {}).get("value", ""))
            elif kind == "SCALAR":
                value = float((attribute.get("scalar") or {}).get("value", 0.0))
                placement[attribute["name"]] = str(int(value)) if value.is_integer() else str(value)
            elif kind == "RANGES":
                ranges = (attribute.get("ranges") or {}).get("range") or []
                placement[attribute["name"]] = "[" + ",".join(f"{r['begin']}-{r['end']}" for r in ranges) + "]"
        return placement

    def _match(self, offer: dict[str, Any], now: float) -> tuple[list[Task], list[dict[str, Any]]]:
        """Instances this offer can take: (the new instances, the ACCEPT's operations)."""
        placement = self._placement(offer)
        resources = OfferResources(offer)
        known = self._known(now)
        candidates = [
            a
            for a, count in self.demand.items()
            if count > 0
            and self.state.spec(a) is not None
            and (self.backoff.get(a) is None or self.backoff[a].until <= now)
        ]
        tasks: list[Task] = []
        infos: list[dict[str, Any]] = []
        groups: list[dict[str, Any]] = []
        exhausted: set[str] = set()
        for spec_id in candidates:
            self.offer_stats.setdefault(spec_id, OfferStats()).processed += 1
        while len(tasks) < self.config.max_instances_per_offer:
            progressed = False
            for spec_id in candidates:
                if spec_id in exhausted or self.demand.get(spec_id, 0) <= 0:
                    continue
                if len(tasks) >= self.config.max_instances_per_offer:
                    break
                spec = self.state.spec(spec_id)
                assert spec is not None
                placed = [t.placement for t in self.state.app_tasks(spec_id) if t.active]
                failed = constraints.all_met(runspec.constraints(spec), placement, placed, known)
                if failed is not None:
                    self._reject(spec_id, "UnfulfilledConstraint")
                    exhausted.add(spec_id)
                    continue
                launch = self._launch_pod if runspec.is_pod(spec) else self._launch_app
                launched = launch(spec, offer, placement, resources)
                if isinstance(launched, str):
                    self._reject(spec_id, launched)
                    exhausted.add(spec_id)
                    continue
                task, operation = launched
                if runspec.is_pod(spec):
                    groups.append(operation)
                else:
                    infos.append(operation)
                tasks.append(task)
                self.state.add_task(task)
                self.demand[spec_id] -= 1
                self.offer_stats[spec_id].last_used_at = iso(now)
                progressed = True
            if not progressed:
                break
        operations = [{"type": "LAUNCH", "launch": {"task_infos": infos}}] if infos else []
        return tasks, operations + groups

    def _launch_app(
        self, app: dict[str, Any], offer: dict[str, Any], placement: dict[str, str], resources: OfferResources
    ) -> tuple[Task, dict[str, Any]] | str:
        got = fit(app, resources)
        if isinstance(got, str):
            return got
        host_ports, task_resources = got
        task = self._new_task(app, offer, placement, host_ports)
        return task, taskinfo.build(app, task.id, task.agent_id, task.host, host_ports, task_resources)

    def _launch_pod(
        self, pod: dict[str, Any], offer: dict[str, Any], placement: dict[str, str], resources: OfferResources
    ) -> tuple[Task, dict[str, Any]] | str:
        got = fit_pod(pod, resources)
        if isinstance(got, str):
            return got
        host_ports, executor_resources, container_resources = got
        instance_id = f"{pathid.safe(pod['id'])}.instance-{uuid.uuid1()}"
        task = Task(
            id=instance_id,
            app_id=pod["id"],
            agent_id=offer["agent_id"]["value"],
            host=str(offer.get("hostname", "")),
            ports=host_ports,
            service_ports=[],
            version=pod["version"],
            config_version=runspec.config_version(pod),
            staged_at=iso(),
            placement=placement,
            containers=instances.new_containers(pod, instance_id, host_ports),
            executor_id=taskgroup.executor_id(instance_id, pod["id"]),
        )
        framework_id = self.state.framework_id or ""
        operation = taskgroup.build(
            pod,
            instance_id,
            framework_id,
            task.agent_id,
            task.host,
            host_ports,
            executor_resources,
            container_resources,
        )
        return task, operation

    def _reject(self, app_id: str, reason: str) -> None:
        stats = self.offer_stats.setdefault(app_id, OfferStats())
        stats.unused += 1
        stats.last_unused_at = iso()
        stats.reasons[reason] += 1

    def _new_task(
        self, app: dict[str, Any], offer: dict[str, Any], placement: dict[str, str], ports: list[int]
    ) -> Task:
        return Task(
            id=f"{pathid.safe(app['id'])}.{uuid.uuid1()}",
            app_id=app["id"],
            agent_id=offer["agent_id"]["value"],
            host=str(offer.get("hostname", "")),
            ports=ports,
            service_ports=appdef.service_ports(app),
            version=app["version"],
            config_version=app["versionInfo"]["lastConfigChangeAt"],
            staged_at=iso(),
            placement=placement,
        )

    # ------------------------------------------------------------------ status updates

    def _on_update(self, status: dict[str, Any]) -> None:
        task_id = status["task_id"]["value"]
        agent_id = (status.get("agent_id") or {}).get("value")
        with self.lock:
            if task_id in self.expunged_unreachable and status.get("state") == "TASK_UNREACHABLE":
                kill_unknown = False  # the answer to our own reconciliation: still away, nothing new
            else:
                kill_unknown = self.updates.apply(status)
            if gone(status.get("state", "")):
                self.expunged_unreachable.pop(task_id, None)
        if status.get("uuid"):
            try:
                self.driver.acknowledge(status)
            except CallFailed as exc:
                log.debug("acknowledging %s failed: %s", task_id, exc)
        if kill_unknown:
            log.info("killing unknown task %s", task_id)
            try:
                self.driver.kill(task_id, agent_id)
            except CallFailed:
                pass
        self.wake()

    # ------------------------------------------------------------------ kills

    def kill(self, task: Task, reason: str) -> None:
        """Under the lock: mark and remember; the kill call itself goes out from ``send_kills``. An unreachable
        instance cannot be killed: it is expunged, and killed as unknown should its agent come back (Marathon's
        ``KillAction.ExpungeFromState``)."""
        if task.killing and task.kill_sent:
            return
        log.debug("killing %s: %s", task.id, reason)
        if task.unreachable_since is not None:
            self.state.expunge_task(task.id)
            self.forget_health(task.id)
            self.forget_unreachable(task)
            return
        task.killing = True
        task.kill_sent = 0.0
        self.state.save_task(task)

    def send_kills(self) -> None:
        """Outside the lock: send pending kills, and resend those unanswered for 10 s (the agent may have missed
        one); a task stuck in staging past ``task_launch_timeout`` is killed too."""
        now = time.time()
        due: list[tuple[str, str]] = []
        with self.lock:
            for task in self.state.tasks.values():
                if (
                    not task.killing
                    and task.state in ("TASK_STAGING", "TASK_STARTING")
                    and now - task.staged_time > self.config.task_launch_timeout
                ):
                    task.killing = True
                if task.killing and now - task.kill_sent > 10.0:
                    task.kill_sent = now
                    if task.containers:
                        due.extend((c["taskId"], task.agent_id) for c in task.containers if not gone(c["state"]))
                    else:
                        due.append((task.id, task.agent_id))
        for task_id, agent_id in due:
            try:
                self.driver.kill(task_id, agent_id or None)
            except CallFailed as exc:
                log.debug("kill %s deferred: %s", task_id, exc)
                with self.lock:
                    pending = self.state.task_of(task_id)
                    if pending is not None:
                        pending.kill_sent = 0.0


def under_maintenance(offer: dict[str, Any], now: float) -> bool:
    """Whether the offer's agent is scheduled for maintenance now: its ``unavailability`` covers this moment."""
    unavailability = offer.get("unavailability")
    if not isinstance(unavailability, dict):
        return False
    try:
        start = int(unavailability["start"]["nanoseconds"]) / 1e9
        duration = unavailability.get("duration")
        end = start + int(duration["nanoseconds"]) / 1e9 if isinstance(duration, dict) else float("inf")
    except (KeyError, TypeError, ValueError):
        return False
    return start <= now < end
