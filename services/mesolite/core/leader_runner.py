"""Run a leader-only service while this instance leads a ZooKeeper group: the one high-availability runner of every
service deployed several times over (Marathon, Chronos, the master).

Every instance contends (``zk.LeaderContender``: an ephemeral sequential ``json.info_`` znode under the group path,
lowest leads) and follows the current leader (``zk.LeaderDetector``) so that non-leaders can forward or redirect
requests to it. The elected one builds its service *at the moment of election* (never earlier: the previous leader
kept changing what is stored) and starts it; a demoted one stops it and forgets it. Transitions run on one worker
thread, in order, because the election and connection callbacks arrive on kazoo's threads, which must not block on
loading state or on joining the service's threads.

When this instance stops leading:

- demoted (its znode is gone: session expired, or cut off for longer than the session timeout): stop the service;
- cut off from ZooKeeper (SUSPENDED) with ``step_down_when_suspended``: stop at once, as Curator's LeaderLatch does,
  since another instance may be elected as soon as the session expires and this one would never hear of it; if the
  session survives the reconnection, lead again with a freshly built service (another may have led meanwhile);
- abdicating (:meth:`abdicate`): stop the service, then delete the znode so the next in line is elected; the
  contender re-queues at the back (if the znode cannot be deleted, this instance keeps leading rather than leave the
  group without a leader);
- stopping: stop the service first, then leave the group, so a standby is elected only once this one has stopped
  acting (and at once, without waiting for a session timeout).

Fencing: a demoted leader may still be finishing a handler when the next one starts. Each election is an epoch,
ended the moment the runner learns it lost the lead (before the service has stopped); :class:`FencedStore` refuses
writes once it is over, so a stale leader can never overwrite what the new one wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from kazoo.client import KazooState

from mesolite.core import zk
from mesolite.core.server import Service
from mesolite.core.store import Store

log = logging.getLogger(__name__)

S = TypeVar("S", bound=Service)
RETRY_DELAY = 2.0  # building the service failed (e.g. ZooKeeper unreachable mid-load): try again while still leading


class NotLeading(RuntimeError):
    """This instance is not (or no longer) the leader; the caller forwards the work or gives up."""


class Fencing(Protocol):
    def check(self) -> None:
        """Raise unless writes are still allowed."""


class Fence:
    """Valid while the election it was issued for lasts: what a service built for one term writes through."""

    def __init__(self, runner: LeaderRunner[Any], epoch: int) -> None:
        self._runner = runner
        self.epoch = epoch

    @property
    def valid(self) -> bool:
        return self._runner.current_epoch == self.epoch

    def check(self) -> None:
        if not self.valid:
            raise NotLeading(f"leadership epoch {self.epoch} is over")


class LeadingFence:
    """Valid while the runner leads, in whichever term: for state that outlives the terms (Marathon keeps one
    ``State`` and reloads it on each election). ``error`` builds what a refused write raises, so a service can refuse
    in its own API's terms."""

    def __init__(self, runner: LeaderRunner[Any], error: Callable[[], Exception] | None = None) -> None:
        self._runner = runner
        self._error = error

    @property
    def valid(self) -> bool:
        return self._runner.current_epoch is not None

    def check(self) -> None:
        if not self.valid:
            raise self._error() if self._error is not None else NotLeading("this instance is not the leader")


class FencedStore:
    """A ``Store`` whose writes fail (NotLeading, or the fence's own error) once the leadership it was opened under
    has ended. Reads stay allowed: a standby may look, never write."""

    def __init__(self, store: Store, fence: Fencing) -> None:
        self._store = store
        self._fence = fence

    def get(self, key: str) -> Any | None:
        return self._store.get(key)

    def list(self, prefix: str) -> dict[str, Any]:
        return self._store.list(prefix)

    def put(self, key: str, value: Any) -> None:
        self._fence.check()
        self._store.put(key, value)

    def delete(self, key: str) -> None:
        self._fence.check()
        self._store.delete(key)


class LeaderRunner(Generic[S]):
    """``factory(fence)`` builds the leader-only service when elected; it is started, and stopped on demotion.

    ``info`` is the JSON this instance publishes in its ``json.info_`` znode; :attr:`leader` is the leader's, and
    ``on_leader_change(info | None)`` hears of every change of leader (on kazoo's thread: it must not block).
    ``step_down_when_suspended=False`` keeps leading through a ZooKeeper disconnection until the session is lost (or
    the disconnection outlasts the session timeout), as a Mesos master does.
    """

    def __init__(
        self,
        client: Any,
        group: str,
        info: dict[str, Any],
        factory: Callable[[Fence], S],
        close_client: bool = True,
        *,
        step_down_when_suspended: bool = True,
        retry_delay: float = RETRY_DELAY,
        on_leader_change: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> None:
        self.client = client
        self.group = group
        self.info = info
        self._factory = factory
        self._close_client = close_client
        self._step_down_when_suspended = step_down_when_suspended
        self._retry_delay = retry_delay
        self._on_leader_change = on_leader_change
        self._contender = zk.LeaderContender(client, group, lambda: self.info, self._elected, self._demoted)
        self._detector = zk.LeaderDetector(client, group, self._leader_changed)
        self._changed = threading.Condition()
        self._won = False  # the contender holds the lowest znode
        self._suspended = False  # cut off from ZooKeeper (only with step_down_when_suspended)
        self._abdicating = False
        self._withdraw_pending = False
        self._stopped = False
        self._epoch = 0
        self.current_epoch: int | None = None  # the epoch this instance leads in, None while it does not
        self._active: S | None = None
        self._active_epoch: int | None = None
        self._worker: threading.Thread | None = None

    # --------------------------------------------------------------------------------------------- queries

    @property
    def leader(self) -> dict[str, Any] | None:
        """The leading instance's published info (this one's own while it leads), None while nobody leads."""
        return self._detector.leader

    @property
    def active(self) -> S | None:
        """The running leader-only service; None while not leading or while it is still being built."""
        return self._active

    def wait_active(self, timeout: float) -> S | None:
        """The service once this instance leads and has built it; None if that does not happen within ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._active is not None or not self._wanted() or self._stopped, timeout)
            return self._active

    @property
    def electing(self) -> bool:
        """Elected, but the service is not running yet (loading state): callers may wait rather than forward."""
        return self._wanted() and self._active is None

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="leader-runner", daemon=True)
        self._worker.start()
        self.client.add_listener(self._connection_state)
        self._detector.start()
        self._contender.start()

    def stop(self) -> None:
        """Stop the service first, then leave the group: the znode goes at once, so a standby takes over without
        waiting for a session timeout, and only once this instance has stopped acting."""
        self.client.remove_listener(self._connection_state)
        self._update(_stopped=True)
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._contender.stop()
        self._detector.stop()
        if self._close_client:
            self.client.stop()
            self.client.close()

    def abdicate(self) -> bool:
        """Give up the lead (the service stops, the znode is deleted, the contender re-queues at the back) and
        return at once; False if this instance does not lead."""
        with self._changed:
            if not self._won or self._stopped:
                return False
        log.warning("abdicating")
        self._update(_abdicating=True, _withdraw_pending=True)
        return True

    # ------------------------------------------------------------------------------------------ transitions

    def _wanted(self) -> bool:
        """Whether the service should run now."""
        return self._won and not self._suspended and not self._abdicating and not self._stopped

    def _update(self, **flags: bool) -> None:
        """Change the election flags (from any thread, never blocking for long) and wake the worker. Losing the lead
        ends the epoch here and now, so fenced writes fail before the service has even been told to stop."""
        with self._changed:
            for name, value in flags.items():
                setattr(self, name, value)
            if not self._wanted():
                self.current_epoch = None
            self._changed.notify_all()

    def _elected(self) -> None:
        self._update(_won=True)

    def _demoted(self) -> None:
        self._update(_won=False, _abdicating=False, _withdraw_pending=False)

    def _connection_state(self, state: str) -> None:
        if not self._step_down_when_suspended:
            return
        suspended = state != KazooState.CONNECTED
        if suspended != self._suspended:
            if suspended:
                log.warning("ZooKeeper connection %s: not acting as leader until it is back", state.lower())
            self._update(_suspended=suspended)

    def _leader_changed(self, info: dict[str, Any] | None) -> None:
        if self._on_leader_change is not None:
            self._on_leader_change(info)

    def _stale(self) -> bool:
        """The running service must go: stopping, demoted, or demoted and re-elected (another may have led since,
        so what it holds in memory is out of date)."""
        return self._active is not None and (not self._wanted() or self.current_epoch != self._active_epoch)

    def _has_work(self) -> bool:
        return self._stopped or self._stale() or self._withdraw_pending or (self._wanted() and self._active is None)

    def _work(self) -> None:
        while True:
            service: S | None = None
            withdraw = False
            with self._changed:
                self._changed.wait_for(self._has_work)
                if self._stale():
                    service, self._active = self._active, None
                    self._changed.notify_all()
                elif self._withdraw_pending and not self._stopped:
                    self._withdraw_pending = False
                    withdraw = True
                elif self._wanted():
                    self._epoch += 1
                    self.current_epoch = epoch = self._epoch
                else:
                    return
            if service is not None:
                log.warning("no longer acting as leader: stopping")
                self._stop_service(service)
            elif withdraw:
                self._withdraw()
            else:
                self._become_leader(epoch)

    def _withdraw(self) -> None:
        if self._contender.withdraw():
            log.info("withdrew from the election: re-queued at the back")
            return
        # Still holding the lead in ZooKeeper: resume it rather than leave every instance without a leader.
        self._update(_abdicating=False)

    def _become_leader(self, epoch: int) -> None:
        log.info("elected leader (epoch %d): building the service", epoch)
        started = time.monotonic()
        service: S | None = None
        try:
            service = self._factory(Fence(self, epoch))
            service.start()
        except Exception:  # keep leading and try again; a standby cannot take over from us anyway
            log.exception("could not start as leader; retrying in %.1fs", self._retry_delay)
            if service is not None:
                self._stop_service(service)
            with self._changed:
                if self.current_epoch == epoch:
                    self.current_epoch = None
                self._changed.wait_for(lambda: not self._wanted(), self._retry_delay)
            return
        with self._changed:
            if self.current_epoch == epoch and self._wanted():
                self._active, self._active_epoch = service, epoch
                self._changed.notify_all()
                log.info("leading (epoch %d) after %.2fs", epoch, time.monotonic() - started)
                return
        self._stop_service(service)  # lost the lead while starting

    @staticmethod
    def _stop_service(service: Service) -> None:
        try:
            service.stop()
        except Exception:  # a failed stop must not stop the runner from leading again later
            log.exception("error stopping the leader's service")
