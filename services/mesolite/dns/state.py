"""The Mesos-DNS service object: the refresh loop, the current record set, and the DNS listeners it feeds.

Refreshing: upstream polls ``/master/state`` every ``refreshSeconds`` (60 s by default), so a new task is invisible
for up to a minute. This service follows the leading master's operator event stream instead (``follow.py``): every
task, agent or framework change triggers a full reload as it happens. Where the master offers no stream (or while
it is down) the loop polls ``/master/state-summary`` every ``watch_interval`` (0.5 s by default): it is small
(agents, frameworks and per-state task counts, no task lists), and any task transition changes a count, so a change
triggers a full reload within about a second. The full poll every ``refreshSeconds`` stays as the fallback for
changes neither can show. ``watch_interval`` 0 turns both off (upstream's behaviour). Every failure keeps the last
good records; a record set is built whole and swapped in with one assignment.
"""

from __future__ import annotations

import logging
import threading
import time

import requests

from mesolite.dns.config import DNSConfig
from mesolite.dns.detect import MasterDetector, StateFetcher
from mesolite.dns.follow import StateFollower
from mesolite.dns.generator import CachedLookup, Lookup, RecordSet, StateError, generate
from mesolite.dns.listener import DNSServer, Worker, bind_pair
from mesolite.dns.resolver import Resolver

log = logging.getLogger(__name__)

_RETRY = 1.0  # between attempts while no state has loaded yet, or after a failure seen by the watch


class DNSService:
    def __init__(self, config: DNSConfig, lookup: Lookup | None = None) -> None:
        self.config = config
        self.records = RecordSet(serial=config.SOASerial)
        self.ready = threading.Event()
        self.leader_address: str | None = None
        self.last_error: str | None = None
        self.fetcher = StateFetcher(config)
        self.detector = MasterDetector(config, self._masters_changed)
        self.follower = StateFollower(
            self.fetcher.session, self.fetcher.scheme, lambda: self.leader_address, self._masters_changed
        )
        self._lookup = lookup or CachedLookup()
        self._fingerprint: str | None = None
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: list[Worker] = []
        self._local: DNSServer | None = None

    # lifecycle

    def start(self) -> None:
        if self.config.DnsOn:
            self._start_listeners()
        self.detector.start()
        if self.config.watch_interval > 0:
            self.follower.start()
        self._thread = threading.Thread(target=self._loop, name="dns-refresh", daemon=True)
        self._thread.start()

    def _start_listeners(self) -> None:
        host, port = self.config.Listener, self.config.Port
        if self.config.workers <= 0:
            udp, tcp = bind_pair(host, port)
            self._local = DNSServer(Resolver(self.config), udp, tcp)
            self._local.start()
            return
        for _ in range(self.config.workers):
            udp, tcp = bind_pair(host, port)
            worker = Worker(udp, tcp, self.config)
            worker.spawn(None)
            self._workers.append(worker)
        log.info("DNS on %s:%d (udp, tcp) in %d worker processes", host, port, len(self._workers))

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.follower.stop()
        self.detector.stop()
        for worker in self._workers:
            worker.stop()
            worker.close_sockets()
        self._workers.clear()
        if self._local is not None:
            self._local.stop()
            self._local = None

    # refreshing

    def _masters_changed(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        next_full = 0.0
        while not self._stopped.is_set():
            now = time.monotonic()
            due = now >= next_full or self._wake.is_set()
            self._wake.clear()
            if not due and self.config.watch_interval > 0 and self.leader_address and not self.follower.following:
                due = self._changed()
            if due:
                ok = self.reload()
                next_full = time.monotonic() + (self.config.RefreshSeconds if ok else _RETRY)
            self._respawn_dead_workers()
            # Tick at least every second even without the watch: dead DNS workers are replaced on the tick.
            tick = self.config.watch_interval if self.config.watch_interval > 0 else _RETRY
            self._wake.wait(max(0.01, min(tick, next_full - time.monotonic())))

    def _changed(self) -> bool:
        assert self.leader_address is not None
        try:
            return self.fetcher.fingerprint(self.leader_address) != self._fingerprint
        except (requests.RequestException, ValueError, AttributeError) as exc:
            log.info("state-summary from %s failed (%s); reloading", self.leader_address, exc)
            self.leader_address = None  # a full reload looks for the leader again
            return True

    def reload(self) -> bool:
        """One attempt: fetch, generate, swap. False (old records kept) on any failure."""
        masters = self.detector.masters()
        before = self._try_fingerprint(self.leader_address)
        try:
            state, address = self.fetcher.load(masters)
            records = generate(state, self.config, masters, self._lookup)
        except (requests.RequestException, ValueError, StateError, RuntimeError) as exc:
            self.last_error = str(exc)
            log.warning("error generating records: %s; keeping old DNS state", exc)
            return False
        # The fingerprint taken before the fetch is only valid for the master that answered; otherwise take a new
        # one (a change between the two requests is then caught by the next full refresh).
        self._fingerprint = before if address == self.leader_address and before else self._try_fingerprint(address)
        self.leader_address = address
        self.follower.retarget(address)
        self.last_error = None
        self._swap(records)
        return True

    def _try_fingerprint(self, address: str | None) -> str | None:
        if not address or self.config.watch_interval <= 0 or self.follower.following:
            return None
        try:
            return self.fetcher.fingerprint(address)
        except (requests.RequestException, ValueError, AttributeError):
            return None

    def _swap(self, records: RecordSet) -> None:
        current = self.records
        same = (
            self.ready.is_set()
            and records.As == current.As
            and records.AAAAs == current.AAAAs
            and records.SRVs == current.SRVs
        )
        if same:
            # Nothing a DNS client can see changed: keep the serial and the workers' packed answers.
            records.serial = current.serial
            self.records = records
            return
        records.serial = max(int(time.time()), current.serial + 1)
        self.config.SOASerial = records.serial  # /v1/config shows the live serial, as upstream's does
        self.records = records
        self.ready.set()
        if self._local is not None:
            self._local.resolver.load(records)
        for worker in self._workers:
            worker.send_records(records)
        log.info(
            "records updated: serial %d, %d A, %d AAAA, %d SRV names",
            records.serial,
            len(records.As),
            len(records.AAAAs),
            len(records.SRVs),
        )

    def _respawn_dead_workers(self) -> None:
        for worker in self._workers:
            if not worker.alive() and not self._stopped.is_set():
                log.warning("DNS worker exited (%s); starting another", worker.process and worker.process.returncode)
                worker.spawn(self.records if self.ready.is_set() else None)
