"""The Chronos service: the schedule loop, and the framework side (offers, status updates, kills, reconciliation).

The state decides (what is due, which run goes on which offer, what a status means); this module only moves time
forward and carries the decisions out: calls to the master, notifications to the notifier. Neither is ever made
under the state's lock, and handing notifications over never blocks (``notifier.py``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mesolite.chronos.notifier import Notifier
from mesolite.chronos.state import ChronosState, Effects, Kill
from mesolite.core.scheduler_driver import CallFailed, SchedulerDriver

log = logging.getLogger(__name__)

IDLE_WAKEUP = 60.0  # nothing scheduled: still look again every minute, as Chronos does
IDLE_REFUSE = 120.0  # decline offers for this long when nothing is queued; a new run revives them
SHORT_REFUSE = 1.0  # something is queued but did not fit (or waits for its retry delay)


@dataclass(frozen=True)
class FrameworkConfig:
    master: str
    name: str = "chronos"
    user: str = "root"
    role: str = "*"
    hostname: str = "localhost"
    webui_url: str = ""
    checkpoint: bool = True
    failover_timeout: float = 604800.0
    reconciliation_interval: float = 600.0
    decline_offer_duration: float | None = None  # seconds; None = the idle/short defaults above

    def framework_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "user": self.user,
            "name": self.name,
            "roles": [self.role],
            "capabilities": [{"type": "MULTI_ROLE"}],
            "checkpoint": self.checkpoint,
            "failover_timeout": self.failover_timeout,
            "hostname": self.hostname,
        }
        if self.webui_url:
            info["webui_url"] = self.webui_url
        return info


class ChronosService:
    def __init__(self, state: ChronosState, config: FrameworkConfig, notifier: Notifier | None = None) -> None:
        self.state = state
        self.config = config
        self.notifier = notifier or Notifier()
        self.driver = SchedulerDriver(
            config.master, config.framework_info(), state.store, self._on_event, on_subscribed=self._after_subscribe
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._revive_needed = threading.Event()

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.notifier.start()
        self.driver.start()
        for target, name in ((self._schedule_loop, "chronos-schedule"), (self._reconcile_loop, "chronos-reconcile")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.state.changed.set()
        self.driver.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self.notifier.stop()

    # ------------------------------------------------------------------------------------- API operations

    def apply(self, effects: Effects) -> None:
        """Carry out what the state decided: kills to the master, notifications to the owners."""
        self.kill(effects.kills)
        self.notifier.submit(effects.notifications)

    def kill(self, kills: list[Kill]) -> None:
        for task_id, agent_id in kills:
            try:
                self.driver.kill(task_id, agent_id)
            except CallFailed as exc:
                # Reconciliation after the next subscription reports the task; an orphan is killed then.
                log.warning("could not kill %s now: %s", task_id, exc)

    # ------------------------------------------------------------------------------------------- loops

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            self.state.changed.clear()
            wake = None
            try:
                wake = self.state.advance_schedules()
                if self.state.has_queued():
                    self._revive()
            except Exception:  # the loop must outlive any one bad pass
                log.exception("schedule pass failed")
            delay = IDLE_WAKEUP
            if wake is not None:
                delay = min(IDLE_WAKEUP, max(0.0, (wake - datetime.now(UTC)).total_seconds()) + 0.005)
            self.state.changed.wait(delay)

    def _reconcile_loop(self) -> None:
        while not self._stop.wait(self.config.reconciliation_interval):
            self._reconcile()

    def _reconcile(self) -> None:
        tasks = self.state.launched()
        try:
            self.driver.reconcile(tasks)
        except CallFailed as exc:
            log.info("reconciliation postponed: %s", exc)

    def _revive(self) -> None:
        """Ask for offers again after declining them for a long time with nothing to run."""
        if not self._revive_needed.is_set():
            return
        try:
            self.driver.revive()
            self._revive_needed.clear()
        except CallFailed as exc:
            log.debug("revive postponed: %s", exc)

    # ------------------------------------------------------------------------------------------ events

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "OFFERS":
            self._on_offers(event["offers"].get("offers") or [])
        elif kind == "UPDATE":
            self._on_update(event["update"]["status"])
        elif kind == "FAILURE":
            log.warning("failure reported by the master: %s", event.get("failure"))

    def _after_subscribe(self, framework_id: str) -> None:
        """On every (re-)subscription, before its first offer is handled: reconcile the runs we know of, then
        implicitly, so the master reports every task it has for us and a task of a job deleted while we could not
        kill it turns up (and is killed) too."""
        self._reconcile()
        try:
            self.driver.reconcile([])
        except CallFailed as exc:
            log.info("implicit reconciliation postponed: %s", exc)
        self._revive_needed.set()
        self.state.changed.set()

    def _on_offers(self, offers: list[dict[str, Any]]) -> None:
        launches, unused = self.state.match_offers(offers)
        # What is left of an offer is filtered like a declined one (Mesos' default would be 5 s): briefly while runs
        # wait, for long when nothing is queued (a new run revives offers).
        queued = self.state.has_queued()
        refuse = self.config.decline_offer_duration or (SHORT_REFUSE if queued else IDLE_REFUSE)
        if not queued:
            self._revive_needed.set()
        for offer, tasks in launches:
            try:
                self.driver.launch(offer, tasks, refuse)
                for task in tasks:
                    log.info("launched %s on %s", task["task_id"]["value"], offer.get("hostname"))
            except CallFailed as exc:
                log.warning("launch on offer %s failed: %s", offer["id"]["value"], exc)
                self.state.launch_failed([task["task_id"]["value"] for task in tasks])
        if unused:
            try:
                self.driver.decline(unused, refuse)
            except CallFailed as exc:
                log.debug("decline failed: %s", exc)
            if not queued and self.state.has_queued():
                # A run queued while we declined may have revived before the master saw this long filter:
                # revive once more, or the offer stays away for the whole filter.
                self._revive_needed.set()
                self.state.changed.set()

    def _on_update(self, status: dict[str, Any]) -> None:
        effects = self.state.on_status(status)
        try:
            self.driver.acknowledge(status)
        except CallFailed as exc:
            log.debug("acknowledge failed (the agent resends): %s", exc)
        self.apply(effects)
