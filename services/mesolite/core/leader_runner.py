"""Run a leader-only service while this instance leads a ZooKeeper group, for frameworks deployed several times over
(Chronos; usable by any service whose state lives in ZooKeeper).

Every instance contends (``zk.LeaderContender``) and follows the current leader (``zk.LeaderDetector``) so that
non-leaders can forward requests to it. The elected one builds its service from what ZooKeeper holds *at the moment
of election* (never earlier: the previous leader kept changing it) and starts it; a demoted one stops it and forgets
it. Transitions run on one worker thread, in order, because the election callbacks arrive on kazoo's threads, which
must not block on loading state or on joining the service's threads.

Fencing: a demoted leader may still be finishing a handler when the next one starts. Each election is an epoch and
the service gets a :class:`Fence` for it; :class:`FencedStore` refuses writes once the epoch is over, so a stale
leader can never overwrite what the new one wrote.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mesolite.core import zk
from mesolite.core.server import Service
from mesolite.core.store import Store

log = logging.getLogger(__name__)

S = TypeVar("S", bound=Service)
RETRY_DELAY = 2.0  # building the service failed (e.g. ZooKeeper unreachable mid-load): try again while still leading


class NotLeading(RuntimeError):
    """This instance is not (or no longer) the leader; the caller forwards the work or gives up."""


class Fence:
    """Valid while the election it was issued for lasts."""

    def __init__(self, runner: LeaderRunner[Any], epoch: int) -> None:
        self._runner = runner
        self.epoch = epoch

    @property
    def valid(self) -> bool:
        return self._runner.current_epoch == self.epoch

    def check(self) -> None:
        if not self.valid:
            raise NotLeading(f"leadership epoch {self.epoch} is over")


class FencedStore:
    """A ``Store`` whose writes fail with NotLeading once the leadership it was opened under has ended."""

    def __init__(self, store: Store, fence: Fence) -> None:
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

    ``info`` is the JSON this instance publishes in its ``json.info_`` znode; :attr:`leader` is the leader's.
    """

    def __init__(
        self,
        client: Any,
        group: str,
        info: dict[str, Any],
        factory: Callable[[Fence], S],
        close_client: bool = True,
    ) -> None:
        self.client = client
        self.info = info
        self._factory = factory
        self._close_client = close_client
        self._contender = zk.LeaderContender(client, group, lambda: self.info, self._elected, self._demoted)
        self._detector = zk.LeaderDetector(client, group, lambda leader: None)
        self._changed = threading.Condition()
        self._want = False
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
            self._changed.wait_for(lambda: self._active is not None or not self._want or self._stopped, timeout)
            return self._active

    @property
    def electing(self) -> bool:
        """Elected, but the service is not running yet (loading state): callers may wait rather than forward."""
        return self._want and self._active is None

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="leader-runner", daemon=True)
        self._worker.start()
        self._detector.start()
        self._contender.start()

    def stop(self) -> None:
        """Leave the group first (the znode goes at once, so a standby takes over without waiting for a session
        timeout), then stop the service."""
        self._contender.stop()
        with self._changed:
            self._stopped = True
            self._want = False
            self.current_epoch = None
            self._changed.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._detector.stop()
        if self._close_client:
            self.client.stop()
            self.client.close()

    # ------------------------------------------------------------------------------------------ transitions

    def _elected(self) -> None:
        with self._changed:
            self._want = True
            self._changed.notify_all()

    def _demoted(self) -> None:
        with self._changed:
            self._want = False
            self.current_epoch = None  # fence at once; the worker stops the service when it gets to it
            self._changed.notify_all()

    def _stale(self) -> bool:
        """The running service must go: stopping, demoted, or demoted and re-elected (another may have led since,
        so what it holds in memory is out of date)."""
        active = self._active is not None
        return active and (self._stopped or not self._want or self.current_epoch != self._active_epoch)

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._stopped or self._stale() or (self._want and self._active is None))
                if self._stale():
                    service, self._active = self._active, None
                    self._changed.notify_all()
                elif not self._stopped:
                    service = None
                    self._epoch += 1
                    self.current_epoch = epoch = self._epoch
                else:
                    return
            if service is not None:
                log.warning("no longer the leader: stopping")
                self._stop_service(service)
                continue
            self._become_leader(epoch)

    def _become_leader(self, epoch: int) -> None:
        log.info("elected leader (epoch %d): loading state", epoch)
        try:
            service = self._factory(Fence(self, epoch))
            service.start()
        except Exception:  # noqa: BLE001 - keep leading and try again; a standby cannot take over from us anyway
            log.exception("could not start as leader; retrying in %.1fs", RETRY_DELAY)
            with self._changed:
                if self.current_epoch == epoch:
                    self.current_epoch = None
                self._changed.wait_for(lambda: self._stopped or not self._want, RETRY_DELAY)
            return
        with self._changed:
            if self.current_epoch == epoch and self._want and not self._stopped:
                self._active, self._active_epoch = service, epoch
                self._changed.notify_all()
                log.info("leading (epoch %d)", epoch)
                return
        self._stop_service(service)  # demoted while loading

    @staticmethod
    def _stop_service(service: Service) -> None:
        try:
            service.stop()
        except Exception:  # noqa: BLE001 - a failed stop must not stop the runner from leading again later
            log.exception("error stopping the leader's service")
