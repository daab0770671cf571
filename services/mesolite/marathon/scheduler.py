"""Marathon as a Mesos framework: the launch queue, offer matching, status updates, kills, backoff, reconciliation.

The launch queue is level-triggered: every tick the service tells the scheduler how many instances each app still
needs (``set_demand``); offers are matched against that, tasks are recorded (and persisted) as staging *before*
the ACCEPT goes out, so a crash between the two can only leave a task Marathon knows and the master does not —
which reconciliation then reports as gone, and the queue relaunches.

Offers with nothing to launch are declined for ``--decline_offer_duration`` and the framework suppresses; any new
demand revives. Launch failures (TASK_FAILED, TASK_FINISHED, TASK_ERROR) grow the app's backoff delay:
``backoffSeconds × backoffFactor^n`` capped at ``maxLaunchDelaySeconds``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesolite.core.protocol import FAILURE_STATES, is_terminal
from mesolite.core.scheduler_driver import CallFailed, SchedulerDriver
from mesolite.marathon import appdef, constraints, pathid, taskinfo
from mesolite.marathon.offers import OfferResources, fit
from mesolite.marathon.state import State, Task, iso

log = logging.getLogger(__name__)

# Launch failures, which grow the app's backoff delay (a task that finishes on its own is one too: apps run forever).
BACKOFF_STATES = {"TASK_FAILED", "TASK_FINISHED", "TASK_ERROR"}
KNOWN_VALUE_TTL = 60.0


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
        self.metrics: Counter[str] = Counter()
        info: dict[str, Any] = {
            "user": config.user,
            "name": config.framework_name,
            "failover_timeout": config.failover_timeout,
            "checkpoint": True,
            "hostname": config.hostname,
            "roles": [config.role],
            # TASK_KILLING_STATE: a task being killed shows as TASK_KILLING, so load balancers drain it first.
            "capabilities": [{"type": "MULTI_ROLE"}, {"type": "TASK_KILLING_STATE"}],
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
            known = [(t.id, t.agent_id or None) for t in self.state.tasks.values()]
        self.reconcile(known)
        self.wake()

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
        if self.connected and time.time() - self._last_reconcile > self.config.reconciliation_interval:
            with self.lock:
                known = [(t.id, t.agent_id or None) for t in self.state.tasks.values()]
            self.reconcile(known)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "OFFERS":
            self._on_offers((event.get("offers") or {}).get("offers") or [])
        elif kind == "UPDATE":
            self._on_update(event["update"]["status"])

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
                self.metrics["revives"] += 1
            elif not self.demand and not self.suppressed and now - self._last_revive > 5.0:
                self.driver.suppress()
                self.suppressed = True
        except CallFailed as exc:
            log.debug("revive/suppress deferred: %s", exc)

    def delay_of(self, app_id: str) -> Backoff | None:
        return self.backoff.get(app_id)

    def reset_delay(self, app_id: str) -> None:
        self.backoff.pop(app_id, None)
        self._revive_pending = True

    def _note_failure(self, app: dict[str, Any]) -> None:
        now = time.time()
        backoff = self.backoff.setdefault(app["id"], Backoff())
        if backoff.delay and now > backoff.last_failure + float(app["maxLaunchDelaySeconds"]):
            backoff.delay = 0.0
        if backoff.delay == 0.0:
            backoff.delay = float(app["backoffSeconds"])
        else:
            backoff.delay = min(backoff.delay * float(app["backoffFactor"]), float(app["maxLaunchDelaySeconds"]))
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
                tasks, infos = self._match(offer, now)
                if infos:
                    launches.append((offer, infos, tasks))
                else:
                    declines.append(offer["id"]["value"])
            wanting = bool(self.demand)
        for offer, infos, tasks in launches:
            try:
                self.driver.accept([offer["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": infos}}], 1.0)
                self.metrics["launched"] += len(infos)
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
        placement = self._placement(offer)
        resources = OfferResources(offer)
        known = self._known(now)
        candidates = [
            a
            for a, count in self.demand.items()
            if count > 0 and a in self.state.apps and (self.backoff.get(a) is None or self.backoff[a].until <= now)
        ]
        tasks: list[Task] = []
        infos: list[dict[str, Any]] = []
        exhausted: set[str] = set()
        for app_id in candidates:
            self.offer_stats.setdefault(app_id, OfferStats()).processed += 1
        while len(infos) < self.config.max_instances_per_offer:
            progressed = False
            for app_id in candidates:
                if app_id in exhausted or self.demand.get(app_id, 0) <= 0:
                    continue
                if len(infos) >= self.config.max_instances_per_offer:
                    break
                app = self.state.apps[app_id]
                placed = [t.placement for t in self.state.app_tasks(app_id) if t.active]
                failed = constraints.all_met(app.get("constraints") or [], placement, placed, known)
                if failed is not None:
                    self._reject(app_id, "UnfulfilledConstraint")
                    exhausted.add(app_id)
                    continue
                got = fit(app, resources)
                if isinstance(got, str):
                    self._reject(app_id, got)
                    exhausted.add(app_id)
                    continue
                host_ports, task_resources = got
                task = self._new_task(app, offer, placement, host_ports)
                infos.append(taskinfo.build(app, task.id, task.agent_id, task.host, host_ports, task_resources))
                tasks.append(task)
                self.state.add_task(task)
                self.demand[app_id] -= 1
                stats = self.offer_stats[app_id]
                stats.last_used_at = iso(now)
                progressed = True
            if not progressed:
                break
        return tasks, infos

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
        state_name = status.get("state", "")
        agent_id = (status.get("agent_id") or {}).get("value")
        kill_unknown = False
        with self.lock:
            task = self.state.tasks.get(task_id)
            if task is None:
                kill_unknown = not is_terminal(state_name)
            else:
                self._apply_update(task, status, state_name)
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

    def _apply_update(self, task: Task, status: dict[str, Any], state_name: str) -> None:
        app = self.state.apps.get(task.app_id)
        previous = task.state
        task.state = state_name
        if "healthy" in status:
            task.mesos_healthy = bool(status["healthy"])
        addresses = [
            {"ipAddress": ip["ip_address"], "protocol": ip.get("protocol", "IPv4")}
            for info in ((status.get("container_status") or {}).get("network_infos") or [])
            for ip in info.get("ip_addresses") or []
            if ip.get("ip_address")
        ]
        if addresses:
            task.ip_addresses = addresses
        if state_name == "TASK_RUNNING" and task.started_at is None:
            task.started_at = iso()
            task.running_time = time.time()
        if is_terminal(state_name):
            self.state.expunge_task(task.id)
            self.forget_health(task.id)
            if state_name in FAILURE_STATES or (state_name == "TASK_KILLED" and not task.killing):
                self.state.last_failures[task.app_id] = {
                    "appId": task.app_id,
                    "host": task.host,
                    "message": status.get("message", ""),
                    "state": state_name,
                    "taskId": task.id,
                    "timestamp": iso(),
                    "version": task.version,
                    "slaveId": task.agent_id,
                }
            if app is not None and state_name in BACKOFF_STATES and not task.killing:
                self._note_failure(app)
        elif previous != state_name or "healthy" in status or addresses:
            self.state.save_task(task)
        self.publish(
            "status_update_event",
            slaveId=task.agent_id,
            taskId=task.id,
            taskStatus=state_name,
            message=status.get("message", ""),
            appId=task.app_id,
            host=task.host,
            ipAddresses=task.ip_addresses,
            ports=task.ports,
            version=task.version,
        )

    # ------------------------------------------------------------------ kills

    def kill(self, task: Task, reason: str) -> None:
        """Under the lock: mark and remember; the kill call itself goes out from ``send_kills``."""
        if task.killing and task.kill_sent:
            return
        log.debug("killing %s: %s", task.id, reason)
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
                    due.append((task.id, task.agent_id))
        for task_id, agent_id in due:
            try:
                self.driver.kill(task_id, agent_id or None)
            except CallFailed as exc:
                log.debug("kill %s deferred: %s", task_id, exc)
                with self.lock:
                    pending = self.state.tasks.get(task_id)
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
