"""The bridge service: follows Marathon, keeps HAProxy's configuration in step, and owns the HAProxy it runs.

Two threads. The event thread holds ``/v2/events`` open (filtered to the events that change routing) and only marks
the routing dirty; ordering is not guaranteed and events may be lost, so they are treated as cache invalidation, as
Marathon's docs ask. The sync thread coalesces what arrived, re-reads every app (one ``/v2/apps?embed=apps.tasks``),
builds the routing, renders it, and applies it only if the text differs from what HAProxy runs. It also re-reads
everything every ``--resync-interval`` and after every stream loss, and restarts HAProxy if it died.

Applying a config never risks the running proxy: the text is staged next to the live file, checked with
``haproxy -c``, and only then moved over it (atomic rename) and reloaded. When the check fails, the candidate is kept
aside (``<work_dir>/rejected.cfg`` and ``rejected.err``), and the apps that changed since the last good config are
bisected to find the ones HAProxy refuses (a bad ``HAPROXY_0_BALANCE``, say): those are left out — and reported on
``/health`` — and the rest is applied. If even the unchanged apps fail (a broken template), nothing is applied.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from mesolite.haproxy_bridge.config import RELEVANT_EVENTS, BridgeConfig
from mesolite.haproxy_bridge.generator import Generator, GlobalSettings, TemplateFailure
from mesolite.haproxy_bridge.haproxy import (
    ExternalHAProxy,
    ReloadError,
    SupervisedHAProxy,
    Validation,
    atomic_write,
    has_lua,
    read_text,
    validate,
)
from mesolite.haproxy_bridge.marathon_client import EventStream, MarathonClient, MarathonUnavailable
from mesolite.haproxy_bridge.routing import (
    Routing,
    RoutingSettings,
    build_routing,
    parse_tasks_text,
    port_in_use,
    resolve_host,
)

log = logging.getLogger(__name__)

COALESCE_QUIET = 0.05  # an event burst (a deployment) is over after this much silence...
COALESCE_MAX = 0.5  # ...or after this long, whichever comes first
RESOLVE_TTL = 60.0
STREAM_READ_TIMEOUT = 60.0  # Marathon sends a keep-alive line every 15 s
LUA_SCRIPT = os.path.join(os.path.dirname(__file__), "lua", "bridge_api.lua")


@dataclass
class Metrics:
    started_at: float = field(default_factory=time.time)
    syncs_total: int = 0
    sync_failures_total: int = 0
    last_sync_at: float | None = None
    last_sync_seconds: float | None = None
    last_successful_sync_at: float | None = None
    last_sync_error: str | None = None
    reloads_total: int = 0
    reload_failures_total: int = 0
    last_reload_at: float | None = None
    last_reload_seconds: float | None = None
    last_reload_error: str | None = None
    unchanged_total: int = 0
    invalid_configs_total: int = 0
    template_errors_total: int = 0
    last_config_error: str | None = None
    last_render_seconds: float | None = None
    last_validate_seconds: float | None = None
    events_total: int = 0
    last_event_at: float | None = None
    event_stream_connected: bool = False
    event_stream_connects_total: int = 0
    haproxy_starts_total: int = 0
    last_event_to_live_seconds: float | None = None
    frontends: int = 0
    servers: int = 0


class BridgeService:
    def __init__(
        self,
        config: BridgeConfig,
        client: MarathonClient | None = None,
        haproxy: SupervisedHAProxy | ExternalHAProxy | None = None,
    ) -> None:
        self.config = config
        self.client = client or MarathonClient(config.marathon, timeout=config.marathon_timeout)
        if haproxy is None:
            if config.supervised:
                haproxy = SupervisedHAProxy(
                    config.haproxy_bin, config.config_path, config.work_dir, timeout=config.reload_timeout
                )
            else:
                assert config.reload_command is not None
                haproxy = ExternalHAProxy(
                    config.reload_command, timeout=config.reload_timeout, config_path=config.config_path
                )
        self.haproxy = haproxy
        reserved = {}
        if config.vhost_port:
            reserved[config.vhost_port] = "HTTP (vhost)"
        if config.stats_port:
            reserved[config.stats_port] = "stats"
        if config.https_port and config.ssl_certs:
            reserved[config.https_port] = "HTTPS (vhost)"
        self.routing_settings = RoutingSettings(
            groups=config.groups,
            strict_mode=config.strict_mode,
            bind_address=config.bind_address,
            reserved_ports=reserved,
        )
        self.generator = Generator(
            GlobalSettings(
                marathon=", ".join(self.client.urls),
                bind_address=config.bind_address,
                vhost_port=config.vhost_port,
                stats_port=config.stats_port,
                stats_address=config.stats_address or config.bind_address,
                socket_path=config.socket_path,
                hard_stop_after=config.hard_stop_after,
                log_target=config.haproxy_log,
                https_port=config.https_port,
                ssl_certs=tuple(config.ssl_certs),
                lua_script=LUA_SCRIPT if config.stats_port and has_lua(config.haproxy_bin) else None,
                bridge_api=_api_url(config.http_address, config.api_port),
            ),
            config.template_dir,
        )
        self.metrics = Metrics()
        self.routing = Routing()  # what HAProxy runs
        self.rejected: dict[str, tuple[tuple[Any, ...], str]] = {}  # app → (its label fingerprint, HAProxy's words)
        self._loaded_text: str | None = None if config.supervised else read_text(config.config_path)
        self._lock = threading.Lock()  # metrics, routing, dirty flag
        self._apply_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._dirty_since: float | None = None
        self._dirty_by_event = False
        self._stream: EventStream | None = None
        self._threads: list[threading.Thread] = []
        self._resolved: dict[str, tuple[str | None, float]] = {}
        self._last_activation = 0.0
        self._retry_rejected = False
        self._rejected_view: dict[str, str] = {}
        self._reload_requested = False

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        os.makedirs(self.config.work_dir, exist_ok=True)
        self._stopping.clear()
        self.request_sync("start", by_event=False)
        self._threads = [threading.Thread(target=self._sync_loop, name="haproxy-bridge-sync", daemon=True)]
        if self.config.sse:
            self._threads.append(threading.Thread(target=self._event_loop, name="haproxy-bridge-events", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        for thread in self._threads:
            thread.join(timeout=15)
        self.haproxy.stop()

    def request_sync(self, reason: str, by_event: bool = True) -> None:
        with self._lock:
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
                self._dirty_by_event = by_event
        log.debug("sync requested: %s", reason)
        self._wake.set()

    def request_reload(self) -> None:
        """marathon-lb's SIGUSR1 (``/_mlb_signal/usr1``): reload HAProxy on the configuration it has, now."""
        with self._lock:
            self._reload_requested = True
        self._wake.set()

    def _reload_if_requested(self) -> None:
        with self._lock:
            requested, self._reload_requested = self._reload_requested, False
        if not requested or self._loaded_text is None:
            return
        with self._apply_lock:
            try:
                self.haproxy.reload()
            except (ReloadError, OSError) as exc:
                with self._lock:
                    self.metrics.reload_failures_total += 1
                    self.metrics.last_reload_error = str(exc)
                log.error("reload of the running configuration failed: %s", exc)
                return
            with self._lock:
                self.metrics.reloads_total += 1
                self.metrics.last_reload_at = time.time()
                self.metrics.last_reload_error = None

    # ------------------------------------------------------------------ sync loop

    def _sync_loop(self) -> None:
        next_full = time.monotonic() + self.config.resync_interval
        failures = 0
        while not self._stopping.is_set():
            with self._lock:
                dirty = self._dirty_since is not None or self._reload_requested
            if not dirty:
                self._wake.wait(timeout=max(0.0, min(1.0, next_full - time.monotonic())))
                self._wake.clear()
            if self._stopping.is_set():
                return
            self._reload_if_requested()
            periodic = time.monotonic() >= next_full
            with self._lock:
                dirty = self._dirty_since is not None
            if dirty or periodic:
                if periodic and failures == 0:
                    self._retry_rejected = True  # the regular resync: a changed template may accept them now
                self._coalesce()
                with self._lock:
                    trigger = self._dirty_since if self._dirty_by_event else None
                    self._dirty_since = None
                ok = self.sync_once(trigger)
                failures = 0 if ok else failures + 1
                delay = self.config.resync_interval if ok else min(self.config.max_backoff, 0.5 * 2**failures)
                next_full = time.monotonic() + delay
            self._keep_running()

    def _coalesce(self) -> None:
        """Wait out an event burst, and keep reloads at least ``--min-reload-interval`` apart."""
        start = time.monotonic()
        while not self._stopping.is_set():
            self._wake.clear()
            if not self._wake.wait(timeout=COALESCE_QUIET) or time.monotonic() - start > COALESCE_MAX:
                break
        pause = self._last_activation + self.config.min_reload_interval - time.monotonic()
        if pause > 0:
            self._stopping.wait(pause)

    def sync_once(self, trigger: float | None = None) -> bool:
        """One full read of Marathon and, if the routing changed, one validated reload. False when Marathon could
        not be read or the result could not be applied (a template error, a failed reload): the loop then tries
        again after a back-off instead of waiting for the next event or the periodic resync."""
        started = time.monotonic()
        try:
            if self.config.source == "tasks":
                apps = parse_tasks_text(self.client.tasks_text())
            else:
                apps = self.client.apps()
        except MarathonUnavailable as exc:
            with self._lock:
                self.metrics.syncs_total += 1
                self.metrics.sync_failures_total += 1
                self.metrics.last_sync_at = time.time()
                self.metrics.last_sync_error = str(exc)
            log.warning("cannot read Marathon: %s", exc)
            return False
        routing = build_routing(apps, self.routing_settings, resolve=self._resolve)
        applied = self.apply(routing, trigger)
        with self._lock:
            self.metrics.syncs_total += 1
            self.metrics.last_sync_at = self.metrics.last_successful_sync_at = time.time()
            self.metrics.last_sync_seconds = time.monotonic() - started
            self.metrics.last_sync_error = None
        return applied

    def _resolve(self, host: str) -> str | None:
        cached = self._resolved.get(host)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        address = resolve_host(host)
        self._resolved[host] = (address, now + RESOLVE_TTL)
        return address

    # ------------------------------------------------------------------ applying a routing

    def apply(self, routing: Routing, trigger: float | None = None) -> bool:
        """Render, validate, write and reload; True when HAProxy now runs this routing (minus rejected apps)."""
        with self._apply_lock:
            if self._retry_rejected:
                self._retry_rejected = False
                self.rejected.clear()
                with self._lock:
                    self._rejected_view = {}
            known_bad = [a for a, services in routing.by_app().items() if self._still_rejected(a, services)]
            candidate = routing.without(known_bad)
            candidate = candidate.without(self._busy_ports(candidate))
            text = self._render(candidate)
            if text is None:
                return False
            if text == self._loaded_text and self.haproxy.running():
                with self._lock:
                    self.metrics.unchanged_total += 1
                    self._set_routing(candidate)
                return True
            check = self._validate(text)
            if not check.ok:
                self._keep_aside(text, check)
                bad = self._find_rejected(candidate, check)
                if bad is None:
                    return False
                fingerprints = candidate.by_app()
                for app_id, reason in bad.items():
                    self.rejected[app_id] = (_fingerprint(fingerprints[app_id]), reason)
                    log.error("leaving out %s: HAProxy rejects its configuration: %s", app_id, reason)
                with self._lock:
                    self._rejected_view = {a: reason for a, (_fp, reason) in self.rejected.items()}
                candidate = candidate.without(bad)
                text = self._render(candidate)
                if text is None:
                    return False
                if text == self._loaded_text and self.haproxy.running():
                    with self._lock:
                        self._set_routing(candidate)
                    return True
            return self._activate(text, candidate, trigger)

    def _busy_ports(self, routing: Routing) -> list[str]:
        """Apps whose new port another program holds: ``haproxy -c`` binds nothing, so only the reload would find
        out, and a failed reload blocks every other change. Retried on every sync (the port may be freed)."""
        bound = {(s.bind_address, s.port) for s in self.routing.services} if self.haproxy.running() else set()
        busy = []
        for service in routing.services:
            if (service.bind_address, service.port) in bound:
                continue
            reason = port_in_use(service.bind_address, service.port)
            if reason is not None:
                routing.problems[service.app_id] = reason
                busy.append(service.app_id)
        return busy

    def _still_rejected(self, app_id: str, services: list[Any]) -> bool:
        entry = self.rejected.get(app_id)
        if entry is None:
            return False
        if entry[0] == _fingerprint(services):
            return True
        del self.rejected[app_id]  # its labels changed: worth another try
        with self._lock:
            self._rejected_view.pop(app_id, None)
        return False

    def _render(self, routing: Routing) -> str | None:
        started = time.monotonic()
        try:
            text = self.generator.render(routing)
        except TemplateFailure as exc:
            with self._lock:
                self.metrics.template_errors_total += 1
                self.metrics.last_config_error = f"template: {exc}"
            log.error("template error, the running configuration stays: %s", exc)
            return None
        with self._lock:
            self.metrics.last_render_seconds = time.monotonic() - started
        return text

    def _validate(self, text: str) -> Validation:
        started = time.monotonic()
        path = self._stage(text)
        try:
            result = validate(self.config.haproxy_bin, path)
            result.text = text
            return result
        finally:
            os.unlink(path)
            with self._lock:
                self.metrics.last_validate_seconds = time.monotonic() - started

    def _stage(self, text: str) -> str:
        """A candidate next to the live file (same directory: same relative paths, and the rename is atomic)."""
        directory = os.path.dirname(os.path.abspath(self.config.config_path))
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f".haproxy-bridge-check-{os.getpid()}-{threading.get_ident()}.cfg")
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def _keep_aside(self, text: str, check: Validation) -> None:
        reason = check.reason
        with self._lock:
            self.metrics.invalid_configs_total += 1
            self.metrics.last_config_error = reason
        atomic_write(os.path.join(self.config.work_dir, "rejected.cfg"), text)
        # Line numbers in HAProxy's words refer to rejected.cfg (the checked copy had another name).
        atomic_write(os.path.join(self.config.work_dir, "rejected.err"), f"{reason}\n\n{check.output}\n")
        log.error(
            "haproxy -c rejects the new configuration (kept in %s/rejected.cfg): %s", self.config.work_dir, reason
        )

    def _find_rejected(self, routing: Routing, failed: Validation) -> dict[str, str] | None:
        """The apps to leave out so that the rest validates: bisection over the apps that changed since the running
        config (the unchanged ones passed ``haproxy -c`` already), ``O(k log n)`` checks for k bad apps among n
        changed. None when the unchanged part fails too (a broken template): then nothing can be applied."""
        by_app = routing.by_app()
        running = self.routing.by_app()
        suspects = sorted(a for a, s in by_app.items() if _fingerprint(s) != _fingerprint(running.get(a, [])))
        good = [a for a in by_app if a not in suspects]
        base = self._validate_apps(routing, good)
        if not base.ok:
            log.error("even the unchanged apps fail haproxy -c; nothing applied: %s", base.reason)
            return None
        bad: dict[str, str] = {}

        def search(candidates: list[str], known: Validation | None) -> None:
            if not candidates:
                return
            check = known or self._validate_apps(routing, good + candidates)
            if check.ok:
                good.extend(candidates)
            elif len(candidates) == 1:
                bad[candidates[0]] = check.reason
            else:
                middle = len(candidates) // 2
                search(candidates[:middle], None)
                search(candidates[middle:], None)

        search(suspects, failed)
        return bad

    def _validate_apps(self, routing: Routing, app_ids: list[str]) -> Validation:
        text = self._render(routing.only(app_ids))
        if text is None:
            return Validation(False, "template error")
        return self._validate(text)

    def _activate(self, text: str, routing: Routing, trigger: float | None) -> bool:
        started = time.monotonic()
        try:
            atomic_write(self.config.config_path, text)
            if self.haproxy.running():
                self.haproxy.reload()
            else:
                self.haproxy.start()
                with self._lock:
                    self.metrics.haproxy_starts_total += 1
        except (ReloadError, OSError) as exc:
            with self._lock:
                self.metrics.reload_failures_total += 1
                self.metrics.last_reload_error = str(exc)
            log.error("reload failed: %s", exc)
            return False
        finally:
            self._last_activation = time.monotonic()
        self._loaded_text = text
        now = time.monotonic()
        with self._lock:
            self.metrics.reloads_total += 1
            self.metrics.last_reload_at = time.time()
            self.metrics.last_reload_seconds = now - started
            self.metrics.last_reload_error = None
            if trigger is not None:
                self.metrics.last_event_to_live_seconds = now - trigger
            self._set_routing(routing)
        log.info(
            "haproxy now routes %d service ports to %d servers (%.0f ms)",
            len(routing.services),
            routing.server_count,
            1000 * (now - started),
        )
        return True

    def _set_routing(self, routing: Routing) -> None:
        self.routing = routing
        self.metrics.frontends = len(routing.services)
        self.metrics.servers = routing.server_count

    def _keep_running(self) -> None:
        """A supervised HAProxy that died (or never started) comes back on the last config that passed ``-c``; before
        anything was applied (Marathon unreachable at boot), on what the previous run left if it is still valid,
        else on an empty proxy (stats only) — stale routes serve better than none."""
        if not self.haproxy.supervised or self.haproxy.running() or self._stopping.is_set():
            return
        with self._apply_lock:
            routing = self.routing
            text = self._loaded_text
            if text is None:
                routing = Routing()
                text = read_text(self.config.config_path)
                if text is None or not self._validate(text).ok:
                    text = self._render(routing)
            if text is None:
                return
            restarted = self._loaded_text is not None
            if self._activate(text, routing, None):
                if restarted:
                    log.warning("haproxy had exited; restarted it")
                return
        self._stopping.wait(1.0)

    # ------------------------------------------------------------------ event stream

    def _event_loop(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                stream = self.client.events(RELEVANT_EVENTS, read_timeout=STREAM_READ_TIMEOUT)
            except MarathonUnavailable as exc:
                log.info("event stream unavailable: %s", exc)
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(self.config.max_backoff, backoff * 1.5)
                continue
            self._stream = stream
            opened = time.monotonic()
            with self._lock:
                self.metrics.event_stream_connected = True
                self.metrics.event_stream_connects_total += 1
            self.request_sync("event stream attached", by_event=False)  # whatever happened while it was down
            try:
                for event_type, _data in stream:
                    with self._lock:
                        self.metrics.events_total += 1
                        self.metrics.last_event_at = time.time()
                    if event_type in RELEVANT_EVENTS:
                        self.request_sync(event_type)
            except (requests.RequestException, OSError, AttributeError, ValueError) as exc:
                if not self._stopping.is_set():
                    log.info("event stream lost: %s", exc)
            finally:
                stream.close()
                self._stream = None
                with self._lock:
                    self.metrics.event_stream_connected = False
            if time.monotonic() - opened > 60:
                backoff = 0.5
            self._stopping.wait(backoff * random.uniform(0.8, 1.2))
            backoff = min(self.config.max_backoff, backoff * 1.5)

    # ------------------------------------------------------------------ views

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out = dict(vars(self.metrics))
            routing = self.routing
            out["rejected_apps"] = dict(self._rejected_view)
        out["haproxy_running"] = self.haproxy.running()
        out["haproxy_pid"] = self.haproxy.pid
        out["label_problems"] = dict(routing.problems)
        return out

    def health(self) -> tuple[bool, dict[str, Any]]:
        metrics = self.snapshot()
        healthy = bool(metrics["haproxy_running"])
        body = {
            "status": "ok" if healthy and metrics["last_sync_error"] is None else "degraded" if healthy else "down",
            "haproxy": {
                "mode": "supervised" if self.haproxy.supervised else "external",
                "running": metrics["haproxy_running"],
                "pid": metrics["haproxy_pid"],
                "config": self.config.config_path,
            },
            "marathon": self.client.url,
            "event_stream_connected": metrics["event_stream_connected"],
            "last_sync_at": metrics["last_successful_sync_at"],
            "last_sync_error": metrics["last_sync_error"],
            "last_reload_at": metrics["last_reload_at"],
            "last_reload_error": metrics["last_reload_error"],
            "last_config_error": metrics["last_config_error"],
            "rejected_apps": metrics["rejected_apps"],
            "label_problems": metrics["label_problems"],
        }
        return healthy, body

    def current_routing(self) -> Routing:
        """What HAProxy routes now (``views.py`` renders it for the API)."""
        with self._lock:
            return self.routing

    @property
    def loaded_text(self) -> str | None:
        return self._loaded_text

    def pids(self) -> list[int]:
        return self.haproxy.pids()


def _api_url(address: str, port: int) -> str:
    """The bridge's API as HAProxy (on this host) reaches it: a wildcard address means loopback."""
    if address in ("", "*", "0.0.0.0"):
        address = "127.0.0.1"
    elif address == "::":
        address = "::1"
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{port}"


def _fingerprint(services: list[Any]) -> tuple[Any, ...]:
    return tuple(s.fingerprint() for s in services)
