"""Chronos' state: jobs, the run queue, running tasks, dependency progress and run history, behind one lock and
persisted through the store interface so that a restart (and later a ZooKeeper-backed failover) loses nothing.

Store keys: ``jobs/<name>`` (the job JSON as ``GET /jobs`` prints it, schedule advanced in place as Chronos does),
``runs/<task id>`` (queued and launched runs; Chronos held these in memory and lost them on failover), ``deps/<name>``
(parents that succeeded since the dependent job last triggered), ``history/<name>`` (finished runs for the stats).

Every method takes its time from ``clock`` so the whole state machine is unit-tested without a server. Methods never
call out: those whose outcome needs the outside world return :class:`Effects` (Mesos kills, notifications to the
job's owners), and the scheduler or the API carries them out after the lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mesolite.chronos import graph, notifications, stats
from mesolite.chronos.history import RunHistory
from mesolite.chronos.history import key_name as _name
from mesolite.chronos.history import store_key as _key
from mesolite.chronos.jobs import (
    Job,
    JobDefaults,
    JobError,
    instant,
    is_scheduled,
    job_epsilon,
    job_schedule,
    last_state,
    now_iso,
    read_job,
)
from mesolite.chronos.notifications import Notification
from mesolite.chronos.schedule import ScheduleError, tick
from mesolite.chronos.tasks import (
    Kill,
    OfferSpace,
    Run,
    constraints_match,
    never_launched,
    offer_agent,
    parse_task_id,
    task_id,
    task_info,
)
from mesolite.core.protocol import FAILURE_STATES, UNREACHABLE_STATES, is_terminal
from mesolite.core.store import Store

log = logging.getLogger(__name__)


class UnknownJob(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.message = f"JobSchedule '{name}' not found"


class TaskError(ValueError):
    """A task id the job has no run of, or a job that does not take the report (Chronos answers 400)."""


@dataclass
class Effects:
    """What a change needs from the outside world, carried out by the caller once the lock is released."""

    kills: list[Kill] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


@dataclass(frozen=True)
class StateConfig:
    defaults: JobDefaults = JobDefaults()
    failure_retry: float = 60.0  # seconds before a failed attempt is retried (--failure_retry, in ms on the CLI)
    disable_after_failures: int = 0
    history_limit: int = 5  # taskStatHistory entries shown (Chronos' --job_history_limit)
    cluster_name: str | None = None  # --cluster_name: the "[name]" before notification subjects


class ChronosState:
    def __init__(self, store: Store, config: StateConfig | None = None, clock: Callable[[], float] = time.time):
        self.store = store
        self.config = config or StateConfig()
        self.clock = clock
        self.changed = threading.Event()  # set whenever the schedule loop or the offer handling has new work
        self._lock = threading.RLock()
        self.jobs: dict[str, Job] = {job["name"]: job for job in store.list("jobs/").values()}
        self.runs: dict[str, Run] = {}
        for key, value in store.list("runs/").items():
            run = Run(**value)
            self.runs[run.task_id] = run
            if key != _key("runs", run.task_id):  # written before keys were escaped: move it
                store.put(_key("runs", run.task_id), value)
                store.delete(key)
        self.deps: dict[str, set[str]] = {_name(k): set(v) for k, v in store.list("deps/").items()}
        self.history = RunHistory(store)
        self._seq = itertools.count(max((run.seq for run in self.runs.values()), default=0) + 1)
        # Runs a previous leader handed to Mesos without hearing back: if the master has never heard of one either,
        # the leader died between recording the launch and sending it, and the run goes back to the queue.
        self._unconfirmed = {tid for tid, run in self.runs.items() if run.state == "launched" and not run.started_at}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -------------------------------------------------------------------------------------------- persistence

    # The store is written before memory: a write that fails (a demoted leader's fenced store, ZooKeeper gone)
    # leaves memory as it was, so memory never claims what the next leader will not find.

    def _save_job(self, job: Job) -> None:
        self.store.put(_key("jobs", job["name"]), job)
        self.jobs[job["name"]] = job

    def _save_run(self, run: Run) -> None:
        self.store.put(_key("runs", run.task_id), asdict(run))
        self.runs[run.task_id] = run

    def _drop_run(self, run: Run) -> None:
        self.store.delete(_key("runs", run.task_id))
        self.runs.pop(run.task_id, None)
        self._unconfirmed.discard(run.task_id)

    def _save_deps(self, name: str, parents: set[str]) -> None:
        if parents:
            self.store.put(_key("deps", name), sorted(parents))
            self.deps[name] = parents
        elif name in self.deps:
            self.store.delete(_key("deps", name))
            del self.deps[name]

    def _recorded(self, run: Run) -> bool:
        """Whether this run's end is already in the history: a leader that died after recording it but before
        dropping the run must not count it twice when the update is delivered again."""
        return self.history.has(run.job, run.task_id)

    def _record(self, run: Run, status: str) -> None:
        record = {
            "taskId": run.task_id,
            "jobName": run.job,
            "slaveId": run.agent_id or "",
            "start": run.started_at or run.launched_at,
            "end": self.clock(),
            "status": status,
        }
        if run.elements_processed is not None:
            record["numElementsProcessed"] = run.elements_processed
        self.history.add(run.job, record)

    # ------------------------------------------------------------------------------------------------ reading

    def list_jobs(self) -> list[Job]:
        with self._lock:
            return [dict(self.jobs[name]) for name in sorted(self.jobs)]

    def get_job(self, name: str) -> Job:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                raise UnknownJob(name)
            return dict(job)

    def current_state(self, name: str) -> str:
        """``idle``, ``queued`` or ``N running`` (a launched task counts as running, as in Chronos)."""
        with self._lock:
            runs = [run for run in self.runs.values() if run.job == name]
            active = sum(1 for run in runs if run.active)
            if active:
                return f"{active} running"
            return "queued" if runs else "idle"

    def summary(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "name": name,
                    "status": last_state(job),
                    "state": self.current_state(name),
                    "schedule": job.get("schedule", ""),
                    "parents": list(job.get("parents") or []),
                    "disabled": job["disabled"],
                }
                for name, job in sorted(self.jobs.items())
            ]

    def graph_csv(self) -> str:
        with self._lock:
            return graph.csv(
                self.jobs,
                {name: last_state(job) for name, job in self.jobs.items()},
                {name: self.current_state(name) for name in self.jobs},
            )

    def graph_dot(self) -> str:
        with self._lock:
            return graph.dot(self.jobs)

    def job_stat(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self.jobs:
                raise UnknownJob(name)
            records = self.history.of(name)
            running = [
                {
                    "taskId": run.task_id,
                    "jobName": name,
                    "slaveId": run.agent_id or "",
                    "start": run.started_at or run.launched_at,
                    "end": None,
                    "status": "Running",
                    **({} if run.elements_processed is None else {"numElementsProcessed": run.elements_processed}),
                }
                for run in sorted(self.runs.values(), key=lambda r: r.seq)
                if run.job == name and run.active and not self._recorded(run)
            ]
        shown = (records + running)[-self.config.history_limit :] if self.config.history_limit else []
        return {
            "histogram": stats.histogram(stats.durations_ms(records)),
            "taskStatHistory": [stats.task_stat(record) for record in reversed(shown)],
        }

    def ranking(self, percentile: str) -> list[dict[str, Any]] | None:
        with self._lock:
            per_job = {name: stats.histogram(stats.durations_ms(self.history.of(name))) for name in self.jobs}
        return stats.ranking(per_job, percentile)

    def launched(self) -> list[Kill]:
        """Tasks handed to Mesos and not known to have ended, for reconciliation."""
        with self._lock:
            return [(run.task_id, run.agent_id) for run in self.runs.values() if run.active and run.state != "finished"]

    def has_queued(self) -> bool:
        with self._lock:
            return any(run.state == "queued" for run in self.runs.values())

    # ----------------------------------------------------------------------------------------------- changing

    def put_job(self, body: Any, kind: str) -> Job:
        """Create or replace a job (``kind``: ``scheduled`` or ``dependent``); JobError for a bad one."""
        with self._lock:
            name = body.get("name") if isinstance(body, dict) else None
            existing = self.jobs.get(name) if isinstance(name, str) else None
            job = read_job(body, self.config.defaults, kind, now=self.now(), existing=existing)
            parents = job.get("parents") or []
            for parent in parents:
                if parent not in self.jobs:
                    raise JobError(f"Error, parent '{parent}' does not exist")
            through = graph.creates_cycle(self.jobs, job["name"], parents)
            if through is not None:
                raise JobError(f"parent '{through}' already depends on '{job['name']}': jobs must not form a cycle")
            self._save_job(job)
            # Keep the progress of parents the job still has; a changed parent list must not re-run it early.
            self._save_deps(job["name"], self.deps.get(job["name"], set()) & set(parents))
            self.changed.set()
            return dict(job)

    def delete_job(self, name: str) -> Effects:
        """Remove a job: children re-parented, its queued runs dropped; its launched tasks are to be killed and its
        owners told."""
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                raise UnknownJob(name)
            for child in graph.after_delete(self.jobs, name).values():
                self._save_job(child)
                self._save_deps(child["name"], self.deps.get(child["name"], set()) & set(child.get("parents") or []))
            kills = self._clear_runs(name)
            for run in [run for run in self.runs.values() if run.job == name]:
                self._drop_run(run)  # its later updates find no job, so a task that outlives the kill is killed again
            self.store.delete(_key("jobs", name))
            del self.jobs[name]
            self._save_deps(name, set())
            self.history.drop(name)
            self.changed.set()
            return Effects(kills, [notifications.deleted(job, self.config.cluster_name)])

    def kill_tasks(self, name: str) -> list[Kill]:
        """``DELETE /task/kill``: queued runs and pending retries dropped (Chronos 2.x), launched ones to kill."""
        with self._lock:
            if name not in self.jobs:
                raise UnknownJob(name)
            return self._clear_runs(name)

    def _clear_runs(self, name: str) -> list[Kill]:
        kills = []
        for run in [run for run in self.runs.values() if run.job == name]:
            if run.state == "finished":  # an async run awaiting its report: no task left to kill
                if not self._recorded(run):
                    self._record(run, "Fail")
                self._drop_run(run)
            elif run.active:
                kills.append((run.task_id, run.agent_id))
            else:
                self._drop_run(run)
        return kills

    def run_now(self, name: str, arguments: str | None = None) -> Run | None:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                raise UnknownJob(name)
            args = arguments.replace(";", "") if arguments and arguments.strip() else None
            return self._enqueue(job, int(self.clock() * 1000), 0, args, reason="run now")

    def mark_success(self, name: str) -> bool:
        """``PUT /job/success``: counts as a success and fires the dependents."""
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return False
            self._succeeded(job)
            return True

    def _enqueue(
        self,
        job: Job,
        due_ms: int,
        attempt: int,
        arguments: str | None,
        not_before: float = 0.0,
        reason: str = "",
        scheduled: bool = False,
        replacing: str | None = None,
    ) -> Run | None:
        """Queue a run; a non-concurrent job with a run already queued or running drops the new one (Chronos).

        A ``scheduled`` run is one occurrence of the schedule: if it is queued already (a leader died after queueing
        it but before advancing the schedule) it is not queued twice. ``replacing`` is the run a retry replaces (still
        stored until the retry is): it does not count as another run of the job.
        """
        name = job["name"]
        args = arguments if arguments is not None else " ".join(job.get("arguments") or [])
        tid = task_id(name, due_ms, attempt, args)
        if scheduled and tid in self.runs:
            return self.runs[tid]
        if not job.get("concurrent") and any(r.job == name and r.task_id != replacing for r in self.runs.values()):
            log.info("job %s: %s dropped, another run is queued or running (concurrent=false)", name, reason)
            return None
        while tid in self.runs:  # two run-nows in one millisecond of a concurrent job
            due_ms += 1
            tid = task_id(name, due_ms, attempt, args)
        run = Run(tid, name, due_ms, attempt, arguments, next(self._seq), bool(job.get("highPriority")), not_before)
        self._save_run(run)
        log.info("job %s: queued %s (%s)", name, tid, reason)
        self.changed.set()
        return run

    # --------------------------------------------------------------------------------------------- schedules

    def advance_schedules(self) -> datetime | None:
        """Launch what is due, skip what is too late, move schedules past now; returns the next wake-up time."""
        with self._lock:
            now = self.now()
            wake: datetime | None = None
            for name in sorted(self.jobs):
                job = self.jobs[name]
                if not is_scheduled(job) or job["disabled"]:
                    continue
                try:
                    schedule = job_schedule(job)
                    epsilon = job_epsilon(job)
                except ScheduleError:
                    log.exception("job %s: unreadable schedule %r", name, job.get("schedule"))
                    continue
                result = tick(schedule, now, epsilon)
                if result is not None:
                    schedule = result.schedule
                    updated = {**job, "schedule": str(schedule)}
                    if schedule.exhausted:
                        log.info("job %s has exhausted all of its recurrences and has been disabled", name)
                        updated["disabled"] = True
                    if result.skipped:
                        log.info("job %s: skipped %d run(s) older than epsilon", name, result.skipped)
                    # The run is stored before the schedule moves past it, so a leader dying in between leaves the
                    # occurrence for the next one to find (and queue once), never a schedule advanced without it.
                    if result.run is not None:
                        due_ms = int(result.run.timestamp() * 1000)
                        self._enqueue(updated, due_ms, 0, None, reason="scheduled", scheduled=True)
                    self._save_job(updated)
                if not schedule.exhausted and (wake is None or schedule.start < wake):
                    wake = schedule.start
            return wake

    # ------------------------------------------------------------------------------------------------ offers

    def match_offers(self, offers: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], list[dict]]], list[str]]:
        """Pack ready runs (high priority first, then oldest) into offers; returns launches and unused offer ids."""
        with self._lock:
            now = self.clock()
            spaces = [OfferSpace.of(offer) for offer in offers]
            placed: dict[int, list[dict[str, Any]]] = {}
            ready = sorted(
                (run for run in self.runs.values() if run.state == "queued" and run.not_before <= now),
                key=lambda run: (not run.high_priority, run.seq),
            )
            for run in ready:
                job = self.jobs.get(run.job)
                if job is None:
                    self._drop_run(run)
                    continue
                ref = parse_task_id(run.task_id)
                assert ref is not None
                for index, space in enumerate(spaces):
                    if not constraints_match(job.get("constraints") or [], space.attributes):
                        continue
                    info = task_info(job, run.task_id, ref, run.arguments, space)
                    if info is None:
                        continue
                    placed.setdefault(index, []).append(info)
                    run.state, run.agent_id, run.launched_at = "launched", offer_agent(space.offer), now
                    self._save_run(run)
                    break
            launches = [(spaces[index].offer, infos) for index, infos in sorted(placed.items())]
            unused = [space.offer["id"]["value"] for index, space in enumerate(spaces) if index not in placed]
            return launches, unused

    def launch_failed(self, task_ids: list[str]) -> None:
        """The ACCEPT call did not go through: the runs go back to the queue."""
        with self._lock:
            for tid in task_ids:
                run = self.runs.get(tid)
                if run is not None and run.state == "launched":
                    run.state, run.agent_id, run.launched_at = "queued", None, None
                    self._save_run(run)
            self.changed.set()

    # ---------------------------------------------------------------------------------------- status updates

    def on_status(self, status: dict[str, Any]) -> Effects:
        """Apply a task status; the effects kill tasks of jobs that no longer exist and tell owners of failures."""
        tid = (status.get("task_id") or {}).get("value", "")
        state = status.get("state", "")
        agent = (status.get("agent_id") or {}).get("value")
        with self._lock:
            run = self.runs.get(tid)
            if run is None:
                return Effects(self._unknown_task(tid, state, agent, status))
            if run.state == "finished":  # an async job's ended task: only its report counts now
                return Effects()
            if tid in self._unconfirmed:
                if never_launched(state, status):
                    log.info("job %s: %s never reached Mesos; queued again", run.job, tid)
                    self._unconfirmed.discard(tid)
                    run.state, run.agent_id, run.launched_at = "queued", None, None
                    self._save_run(run)
                    self.changed.set()
                    return Effects()
                self._unconfirmed.discard(tid)
            if agent:
                run.agent_id = agent
            if state in ("TASK_STAGING", "TASK_STARTING", "TASK_KILLING"):
                if run.state == "queued":  # reconciliation found a task we thought was not launched
                    run.state = "launched"
                self._save_run(run)
            elif state == "TASK_RUNNING":
                if run.state != "running":
                    run.state = "running"
                    run.started_at = float(status.get("timestamp") or self.clock())
                    self._save_run(run)
            elif state == "TASK_FINISHED":
                job = self.jobs.get(run.job)
                if job is not None and job.get("async") and not self._recorded(run):
                    # Chronos 2.x: an async job's task only starts the work; the job reports its end itself.
                    log.info("job %s: async task %s ended; awaiting its report", run.job, tid)
                    run.state = "finished"
                    self._save_run(run)
                    return Effects()
                return Effects(notifications=self._finished(run))
            elif state == "TASK_KILLED":
                if not self._recorded(run):
                    self._record(run, "Fail")
                self._drop_run(run)
                log.info("job %s: task %s killed", run.job, tid)
            elif state in FAILURE_STATES or state in UNREACHABLE_STATES:  # a task we may never hear of again failed too
                return Effects(notifications=self._failed(run, status))
            return Effects()

    def report_async(self, task_id: str, status_code: int) -> Effects:
        """``PUT /scheduler/task/{id}`` (2.x): a job reports a run's end, 0 for success, else a failure (retries and
        notifications as for a failed task). The first report of a run counts; later ones change nothing.

        The report may come before Mesos' own end of the task (the task reports, then exits): the run then stays
        until that end, already counted, so the job still shows it running and a non-concurrent job waits for it.
        """
        with self._lock:
            ref = parse_task_id(task_id)
            if ref is None or ref.job not in self.jobs:
                raise UnknownJob(ref.job if ref is not None else task_id)
            run = self.runs.get(task_id)
            if run is None:
                if self.history.has(ref.job, task_id):
                    log.info("job %s: %s reported again; already counted", ref.job, task_id)
                    return Effects()
                raise TaskError(f"Task id {task_id} not found")
            if run.state == "queued":
                raise TaskError(f"Task id {task_id} has not been launched")
            if self._recorded(run):
                log.info("job %s: %s reported again; already counted", ref.job, task_id)
                return Effects()
            log.info("job %s: %s reported status code %d", ref.job, task_id, status_code)
            if status_code == 0:
                effects = Effects(notifications=self._finished(run, drop=run.state == "finished"))
            else:
                failure = {"state": "TASK_FAILED", "message": ""}
                effects = Effects(notifications=self._failed(run, failure, drop=run.state == "finished"))
            self.changed.set()
            return effects

    def add_progress(self, name: str, task_id: str, elements: int) -> None:
        """``POST /job/{name}/task/{id}/progress``: add to a run's ``numElementsProcessed`` (not idempotent, as
        upstream's Cassandra counter). The run may be under way or finished (still in the history)."""
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                raise UnknownJob(name)
            if not job.get("dataProcessingJobType"):
                raise TaskError(f"JobSchedule '{name}' is not enabled to track data")
            run = self.runs.get(task_id)
            if run is not None and run.job == name and not self._recorded(run):
                run.elements_processed = (run.elements_processed or 0) + elements
                self._save_run(run)
                return
            if not self.history.add_elements(name, task_id, elements):
                raise TaskError(f"Task id {task_id} not found")

    def _unknown_task(self, tid: str, state: str, agent: str | None, status: dict[str, Any]) -> list[Kill]:
        """A task we have no run for: adopt a live one of a known job, kill one of a deleted job."""
        if not state or is_terminal(state):
            return []
        ref = parse_task_id(tid)
        if ref is None or ref.job not in self.jobs:
            return [(tid, agent)]
        run = Run(tid, ref.job, ref.due_ms, ref.attempt, None, next(self._seq), state="launched", agent_id=agent)
        run.launched_at = self.clock()
        if state == "TASK_RUNNING":
            run.state, run.started_at = "running", float(status.get("timestamp") or self.clock())
        self._save_run(run)
        return []

    # A run's end is recorded, then its effects applied, then the run dropped: an update delivered again (the
    # leader died before acknowledging it) finds the record and only drops the run.

    def _finished(self, run: Run, drop: bool = True) -> list[Notification]:
        told: list[Notification] = []
        if not self._recorded(run):
            self._record(run, "Success")
            job = self.jobs.get(run.job)
            if job is not None:
                self._succeeded(job)
                told = self._exhausted(self.jobs[job["name"]])
        if drop:
            self._drop_run(run)
        return told

    def _exhausted(self, job: Job) -> list[Notification]:
        """After a success: a schedule with no recurrence left is over (the job is disabled), and its owners are
        told so, as Chronos does on every success of an ``R0`` job."""
        if not is_scheduled(job):
            return []
        try:
            if not job_schedule(job).exhausted:
                return []
        except ScheduleError:
            return []
        return [notifications.recurrences_exhausted(job, self.config.cluster_name)]

    def _succeeded(self, job: Job) -> None:
        updated = {
            **job,
            "successCount": job["successCount"] + 1,
            "errorsSinceLastSuccess": 0,
            "lastSuccess": now_iso(self.now()),
        }
        self._save_job(updated)
        self._trigger_children(job["name"])

    def _failed(self, run: Run, status: dict[str, Any], drop: bool = True) -> list[Notification]:
        told: list[Notification] = []
        if not self._recorded(run):
            self._record(run, "Fail")
            told = self._failure_effects(run, status)
        if drop:
            self._drop_run(run)
        return told

    def _failure_effects(self, run: Run, status: dict[str, Any]) -> list[Notification]:
        job = self.jobs.get(run.job)
        if job is None:
            return []
        reason = status.get("message") or status.get("reason") or status.get("state")
        error, success = job.get("lastError") or "", job.get("lastSuccess") or ""
        recently_fine = not error or (bool(success) and instant(success) >= instant(error))
        if run.attempt < job["retries"] and recently_fine:
            delay = self.config.failure_retry
            log.info("job %s: attempt %d failed (%s), retrying in %.1fs", job["name"], run.attempt, reason, delay)
            due_ms = int((self.clock() + delay) * 1000)
            retry_at = self.clock() + delay
            self._enqueue(job, due_ms, run.attempt + 1, run.arguments, retry_at, reason="retry", replacing=run.task_id)
            return []
        log.warning("job %s failed beyond retries (%s)", job["name"], reason)
        limit = self.config.disable_after_failures
        updated = {
            **job,
            "errorCount": job["errorCount"] + 1,
            "errorsSinceLastSuccess": job["errorsSinceLastSuccess"] + 1,
            "lastError": now_iso(self.now()),
        }
        disable = limit > 0 and job["errorsSinceLastSuccess"] + 1 >= limit
        if disable:
            updated["disabled"] = True
        self._save_job(updated)
        if job.get("softError"):
            self._trigger_children(job["name"])
        notice = notifications.disabled_after_failures if disable else notifications.retries_exhausted
        return [notice(updated, run.task_id, updated["lastError"], status.get("message"), self.config.cluster_name)]

    def _trigger_children(self, name: str) -> None:
        for child_name in graph.children(self.jobs, name):
            child = self.jobs[child_name]
            due, succeeded = graph.record_success(child["parents"], self.deps.get(child_name, set()), name)
            self._save_deps(child_name, succeeded)
            if due and not child["disabled"]:
                self._enqueue(child, int(self.clock() * 1000), 0, None, reason=f"parents done ({name} last)")
