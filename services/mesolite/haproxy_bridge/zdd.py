"""``mesolite zdd``: marathon-lb's zero-downtime (blue/green) deployment, against Marathon and the HAProxy bridge.

The app JSON carries ``HAPROXY_DEPLOYMENT_GROUP`` and ``HAPROXY_DEPLOYMENT_ALT_PORT``. The first deploy creates
``<id>-blue`` on the app's service port. Each later one creates the other colour on the alternate port with
``HAPROXY_0_PORT`` set to the original, so the bridge merges both into one backend bound on the original port
(``deployment_groups.py``), starts it with ``--initial-instances``, and then steps:

1. wait until Marathon has no deployment running for the new app;
2. every ``--step-delay`` until ``--max-wait``, read the stats CSV of every HAProxy the ``--marathon-lb`` host name
   resolves to (skipping a round while one reloads: more than two pids), until the group's backend lists
   new + old instances, at least the target are UP, and a MAINT (draining) server has no session left;
3. kill the old tasks drained on every HAProxy (``POST /v2/tasks/delete?scale=true``), after ``--pre-kill-hook``;
4. scale the new app up (by half again, or ``--linear-increase``; straight to the target once it is at least the
   old count); repeat until the new app is at the target and every old instance is drained, then delete the old app.

The bridge drains an old task only once a new one is healthy, and zdd kills only tasks HAProxy no longer sends
anything to, so no request meets a task being killed. Exit codes are zdd.py's: 0 done, 1 declined at a prompt,
2 unexpected error, 3 bad arguments, 4 a field missing from the JSON, 5 the stats endpoint, 6 Marathon, 7 create,
8 delete, 9 scale.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import requests

from mesolite.haproxy_bridge.routing import backend_name, resolve_host, server_name

log = logging.getLogger(__name__)


class ZddError(Exception):
    exit_status = 2


class InvalidArg(ZddError):
    exit_status = 3


class MissingField(ZddError):
    exit_status = 4


class StatsEndpointError(ZddError):
    exit_status = 5


class MarathonError(ZddError):
    exit_status = 6


class AppCreateError(ZddError):
    exit_status = 7


class AppDeleteError(ZddError):
    exit_status = 8


class AppScaleError(ZddError):
    exit_status = 9


@dataclass
class ZddConfig:
    marathon: str
    marathon_lb: list[str]
    json: str
    dry_run: bool = False
    force: bool = False
    step_delay: float = 5.0
    initial_instances: int = 1
    linear_increase: int = 0
    resume: bool = False
    max_wait: float = 300.0
    new_instances: int = 0
    complete_cur: bool = False
    complete_prev: bool = False
    pre_kill_hook: str | None = None
    auth: tuple[str, str] | None = None
    ca_cert: str | None = None


@dataclass
class Listener:
    """One server row of HAProxy's stats CSV."""

    pxname: str
    svname: str
    status: str
    qcur: int
    scur: int

    @property
    def drained(self) -> bool:
        return self.status == "MAINT" and self.qcur == 0 and self.scur == 0


@dataclass
class Zdd:
    config: ZddConfig
    out: TextIO = field(default_factory=lambda: sys.stdout)
    ask: Callable[[str], str] = input
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    resolve_all: Callable[[str], list[str]] = field(default_factory=lambda: _ipv4_addresses)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.marathon = self.config.marathon.rstrip("/")
        if self.config.auth:
            self.session.auth = self.config.auth
        if self.config.ca_cert:
            self.session.verify = self.config.ca_cert

    # ------------------------------------------------------------------ the deployment

    def run(self) -> bool:
        app = self._load_app()
        previous = [a for a in self._apps() if _group(a) == _group(app)]
        if len(previous) > 1:
            return self._resume(previous)
        if self.config.complete_cur or self.config.complete_prev:
            raise InvalidArg("--complete-cur and --complete-prev need a hybrid deployment (two colours running)")
        new_app = self.prepare(previous, app)
        log.info("final app definition:")
        self.out.write(json.dumps(new_app, sort_keys=True, indent=2) + "\n")
        if self.config.dry_run:
            return True
        if not self._confirm("Continue with deployment?"):
            return False
        self._request("POST", "/v2/apps", AppCreateError, json=new_app)
        if not previous:
            return True  # the first deployment: nothing to swap
        return self.swap(new_app, _last(previous))

    def prepare(self, previous: list[dict[str, Any]], app: dict[str, Any]) -> dict[str, Any]:
        """The next colour of ``app``: id ``<id>-<colour>``, the alternating port, the instances to start with."""
        app = json.loads(json.dumps(app))
        labels = app["labels"]
        if previous:
            last = _last(previous)
            colour = "green" if (last.get("labels") or {}).get("HAPROXY_DEPLOYMENT_COLOUR") == "blue" else "blue"
            port = _next_port(last)
            target = int(last.get("instances") or 0)
            new_instances = min(self.config.new_instances, target)
            cap = new_instances if new_instances > 0 else target
            app["instances"] = min(self.config.initial_instances, cap)
            labels["HAPROXY_DEPLOYMENT_NEW_INSTANCES"] = str(new_instances)
        else:
            colour, port, target = "blue", _service_port(app), int(app.get("instances", 1))
            labels["HAPROXY_DEPLOYMENT_NEW_INSTANCES"] = "0"
        labels["HAPROXY_APP_ID"] = app["id"]
        app["id"] = "/" + f"{app['id']}-{colour}".lstrip("/")
        labels["HAPROXY_0_PORT"] = str(_service_port(app))
        _set_service_port(app, port)
        labels["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"] = str(target)
        labels["HAPROXY_DEPLOYMENT_COLOUR"] = colour
        labels["HAPROXY_DEPLOYMENT_STARTED_AT"] = datetime.now().isoformat()
        return app

    def swap(self, new_app: dict[str, Any], old_app: dict[str, Any]) -> bool:
        while True:
            old_app = self._app(old_app["id"])
            new_app = self._app(new_app["id"])
            if new_app.get("deployments"):
                self.sleep(self.config.step_delay)
                continue
            if self._hybrid(new_app) and self._ready_to_delete(new_app, old_app, []):
                return self._delete_old(old_app, new_app)  # the split is reached: nothing is left to drain
            to_kill = self.tasks_to_kill(new_app, old_app)
            if self._ready_to_delete(new_app, old_app, to_kill):
                return self._delete_old(old_app, new_app)
            if to_kill:
                self._pre_kill_hook(old_app, to_kill, new_app)
                log.info("%d drained old tasks to kill: %s", len(to_kill), ", ".join(to_kill))
                if not self._confirm("Continue?"):
                    return False
                self._request("POST", "/v2/tasks/delete?scale=true", AppScaleError, json={"ids": to_kill})
            wanted = _new_count(new_app) if self._hybrid(new_app) else _target(new_app)
            if int(new_app["instances"]) < wanted:
                self._scale_new(new_app, old_app)

    def tasks_to_kill(self, new_app: dict[str, Any], old_app: dict[str, Any]) -> list[str]:
        """Old tasks drained on every HAProxy, once the group's backend has settled (see the module); on timeout,
        the old tasks merely marked draining."""
        urls = self.stats_urls()
        listeners = self._listeners(new_app, urls, StatsEndpointError)
        deadline = self.clock() + self.config.max_wait
        while self.clock() < deadline:
            self.sleep(self.config.step_delay)
            log.info("old app runs %s instances, new app %s", old_app["instances"], new_app["instances"])
            if any(self._reloading(url) for url in urls):
                continue
            try:
                listeners = self._listeners(new_app, urls, None)
            except requests.RequestException:
                continue
            count = len(urls)
            log.info("%d servers of %s across %d HAProxy", len(listeners), _pxname(new_app), count)
            if len(listeners) / count != int(new_app["instances"]) + int(old_app["instances"]):
                continue
            if len([li for li in listeners if li.status == "UP"]) / count < _target(new_app):
                continue
            if not any(li.status == "MAINT" for li in listeners) and int(new_app["instances"]) < _target(new_app):
                return []  # the bridge drains nothing until the new app grows (zdd.py waited --max-wait here)
            if not any(li.drained for li in listeners):
                continue
            return self._matching(old_app, listeners, count, lambda li: li.drained)
        log.info("timed out waiting for tasks to drain; killing the ones marked draining")
        return self._matching(old_app, listeners, len(urls), lambda li: li.status == "MAINT")

    # ------------------------------------------------------------------ steps

    def _resume(self, previous: list[dict[str, Any]]) -> bool:
        newest, second = sorted(previous, key=_started_at)[:-3:-1]
        if self.config.complete_cur:
            log.info("converting every instance to the current (%s) configuration", _colour(newest))
            return self.swap(newest, second)
        if self.config.complete_prev:
            log.info("converting every instance to the previous (%s) configuration", _colour(second))
            return self.swap(second, newest)
        if self.config.resume:
            log.info("found a deployment in progress, resuming")
            return self.swap(newest, second)
        raise ZddError("there appears to be a deployment in progress (use --resume, --complete-cur or --complete-prev)")

    def _ready_to_delete(self, new_app: dict[str, Any], old_app: dict[str, Any], drained: list[str]) -> bool:
        if self._hybrid(new_app):
            return int(new_app["instances"]) == _new_count(new_app) and int(old_app["instances"]) == _target(
                old_app
            ) - _new_count(new_app)
        return int(new_app["instances"]) == _target(new_app) and len(drained) == int(old_app["instances"])

    def _delete_old(self, old_app: dict[str, Any], new_app: dict[str, Any]) -> bool:
        if self._hybrid(new_app):
            log.info("hybrid deployment: %s stays", old_app["id"])
            return True
        log.info("about to delete the old app %s", old_app["id"])
        if not self._confirm("Continue?"):
            return False
        self._request("DELETE", f"/v2/apps{old_app['id']}", AppDeleteError)
        return True

    def _scale_new(self, new_app: dict[str, Any], old_app: dict[str, Any]) -> None:
        current = int(new_app["instances"])
        linear = self.config.linear_increase > 0
        instances = current + self.config.linear_increase if linear else math.floor(current + (current + 1) / 2)
        if self._hybrid(new_app):
            instances = min(instances, _new_count(new_app))
        elif linear:
            instances = min(instances, _target(new_app))
        elif instances >= int(old_app["instances"]):
            instances = _target(new_app)
        log.info("scaling the new app up to %d instances", instances)
        self._request("PUT", f"/v2/apps{new_app['id']}", AppScaleError, json={"instances": instances})

    def _hybrid(self, app: dict[str, Any]) -> bool:
        return _new_count(app) != 0 and not self.config.complete_cur and not self.config.complete_prev

    def _pre_kill_hook(self, old_app: dict[str, Any], ids: list[str], new_app: dict[str, Any]) -> None:
        hook = self.config.pre_kill_hook
        if hook is None:
            return
        log.info("calling the pre-kill hook %s", hook)
        try:
            subprocess.run([hook, json.dumps(old_app), json.dumps(ids), json.dumps(new_app)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ZddError(f"the pre-kill hook stopped the deployment: {exc}") from None

    def _confirm(self, question: str) -> bool:
        if self.config.force:
            return True
        while True:
            answer = self.ask(f"{question} [Y/n] ").strip().lower()
            if answer in ("", "y", "ye", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            self.out.write("Please respond with 'yes' or 'no' (or 'y' or 'n').\n")

    # ------------------------------------------------------------------ HAProxy

    def stats_urls(self) -> list[str]:
        """One URL per HAProxy: every IPv4 address each ``--marathon-lb`` host name resolves to (zdd.py's rule)."""
        urls = []
        for given in self.config.marathon_lb:
            parsed = urllib.parse.urlparse(given if "://" in given else f"http://{given}")
            host = parsed.hostname or "127.0.0.1"
            port = f":{parsed.port}" if parsed.port else ""
            for address in self.resolve_all(host) or [host]:
                urls.append(urllib.parse.urlunparse(parsed._replace(netloc=f"{address}{port}")).rstrip("/"))
        return urls

    def _reloading(self, url: str) -> bool:
        try:
            response = self.session.get(url + "/_haproxy_getpids", timeout=10)
            response.raise_for_status()
        except requests.RequestException:
            return True
        pids = response.text.split()
        if len(pids) > 2:
            log.info("waiting for %d haproxy processes on %s", len(pids), url)
            return True
        return False

    def _listeners(self, app: dict[str, Any], urls: list[str], error: type[ZddError] | None) -> list[Listener]:
        rows: list[Listener] = []
        for url in urls:
            try:
                response = self.session.get(url + "/haproxy?stats;csv", timeout=10)
                response.raise_for_status()
            except requests.RequestException as exc:
                if error is None:
                    raise
                raise error(f"cannot read HAProxy's stats at {url}: {exc}") from None
            rows += parse_stats(response.text)
        name = _pxname(app)
        return [r for r in rows if r.pxname == name and r.svname not in ("FRONTEND", "BACKEND")]

    def _matching(
        self, app: dict[str, Any], listeners: list[Listener], count: int, wanted: Callable[[Listener], bool]
    ) -> list[str]:
        names = [li.svname for li in listeners if wanted(li)]
        out = []
        for task in app.get("tasks") or []:
            ports = task.get("ports") or []
            host = str(task.get("host") or "")
            address = resolve_host(host) if host else None
            if ports and address and names.count(server_name(host, address, int(ports[0]))) == count:
                out.append(str(task["id"]))
        return out

    # ------------------------------------------------------------------ Marathon

    def _load_app(self) -> dict[str, Any]:
        try:
            with open(self.config.json) as handle:
                app = json.load(handle)
        except (OSError, ValueError) as exc:
            raise InvalidArg(f"cannot read the app JSON {self.config.json}: {exc}") from None
        if not isinstance(app, dict) or not app.get("id"):
            raise MissingField("the app JSON has no app id")
        labels = app.get("labels")
        if not isinstance(labels, dict) or "HAPROXY_DEPLOYMENT_GROUP" not in labels:
            raise MissingField("please define the HAPROXY_DEPLOYMENT_GROUP label")
        if "HAPROXY_DEPLOYMENT_ALT_PORT" not in labels:
            raise MissingField("please define the HAPROXY_DEPLOYMENT_ALT_PORT label")
        try:
            int(labels["HAPROXY_DEPLOYMENT_ALT_PORT"])
        except ValueError:
            raise InvalidArg("HAPROXY_DEPLOYMENT_ALT_PORT is not a port") from None
        _service_port(app)
        return app

    def _apps(self) -> list[dict[str, Any]]:
        apps: list[dict[str, Any]] = self._request("GET", "/v2/apps", MarathonError).json()["apps"]
        return apps

    def _app(self, app_id: str) -> dict[str, Any]:
        app: dict[str, Any] = self._request("GET", f"/v2/apps{app_id}", MarathonError).json()["app"]
        return app

    def _request(self, method: str, path: str, error: type[ZddError], **kwargs: Any) -> requests.Response:
        url = self.marathon + path
        try:
            response = self.session.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            raise error(f"{method} {url}: {exc}") from None
        if response.status_code >= 400:
            raise error(f"{method} {url}: HTTP {response.status_code}: {response.text[:2000]}")
        return response


def parse_stats(text: str) -> list[Listener]:
    """HAProxy's ``;csv`` stats: a ``# pxname,svname,...`` header, then one row per proxy and server."""
    lines = text.splitlines()
    if not lines:
        return []
    reader = csv.DictReader(io.StringIO("\n".join([lines[0].lstrip("# ")] + lines[1:])))
    out = []
    for row in reader:
        if not row.get("pxname") or row["pxname"].startswith("#"):
            continue
        out.append(
            Listener(
                row["pxname"],
                row.get("svname") or "",
                row.get("status") or "",
                _int(row.get("qcur")),
                _int(row.get("scur")),
            )
        )
    return out


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _ipv4_addresses(host: str) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)})
    except OSError:
        return []


def _group(app: dict[str, Any]) -> str | None:
    return (app.get("labels") or {}).get("HAPROXY_DEPLOYMENT_GROUP")


def _colour(app: dict[str, Any]) -> str:
    return str((app.get("labels") or {}).get("HAPROXY_DEPLOYMENT_COLOUR"))


def _started_at(app: dict[str, Any]) -> str:
    return str((app.get("labels") or {}).get("HAPROXY_DEPLOYMENT_STARTED_AT", "0"))


def _last(apps: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(apps, key=_started_at)[-1]


def _target(app: dict[str, Any]) -> int:
    value = (app.get("labels") or {}).get("HAPROXY_DEPLOYMENT_TARGET_INSTANCES")
    return int(value) if value is not None else int(app.get("instances") or 0)


def _new_count(app: dict[str, Any]) -> int:
    return int((app.get("labels") or {}).get("HAPROXY_DEPLOYMENT_NEW_INSTANCES") or 0)


def _pxname(app: dict[str, Any]) -> str:
    """The group's backend as the bridge names it: ``<group>_<HAPROXY_0_PORT>``."""
    group = str(_group(app) or "")
    return backend_name(group if group.startswith("/") else "/" + group, int(app["labels"]["HAPROXY_0_PORT"]))


def _port_list(app: dict[str, Any]) -> tuple[list[dict[str, Any]], str] | None:
    container = app.get("container") or {}
    for mappings in ((container.get("docker") or {}).get("portMappings"), container.get("portMappings")):
        if mappings:
            return mappings, "servicePort"
    if app.get("portDefinitions"):
        return app["portDefinitions"], "port"
    return None


def _service_port(app: dict[str, Any]) -> int:
    found = _port_list(app)
    if found is not None and found[0][0].get(found[1]):
        return int(found[0][0][found[1]])
    if app.get("ports"):
        return int(app["ports"][0])
    raise MissingField("the app has no service port (portDefinitions[0].port or a portMapping's servicePort)")


def _set_service_port(app: dict[str, Any], port: int) -> None:
    found = _port_list(app)
    if found is not None:
        found[0][0][found[1]] = int(port)
    else:
        app["ports"][0] = int(port)


def _next_port(app: dict[str, Any]) -> int:
    """The alternate port, unless the last deployment already used it (then the original one)."""
    labels = app.get("labels") or {}
    alt = int(labels["HAPROXY_DEPLOYMENT_ALT_PORT"])
    try:
        current = _service_port(app)
    except MissingField:
        return alt
    return int(labels["HAPROXY_0_PORT"]) if current == alt and "HAPROXY_0_PORT" in labels else alt
