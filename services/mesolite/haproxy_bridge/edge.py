"""marathon-lb's edge labels: TLS, redirects, HSTS, basic auth, path rewriting and source ACLs, per service port.

Each label is checked here against what it will become in haproxy.cfg, so that no value can add a directive of its
own: paths and certificates are single tokens from a small alphabet, a realm has no quote nor ``$`` (HAProxy expands
environment variables inside double quotes), a password is a crypt(3) hash. A label that needs something the app
does not have (``REDIRECT_TO_HTTPS`` without a ``VHOST``, ``USE_HSTS`` on a TCP port) is refused rather than
silently dropped, as marathon-lb did.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from mesolite.haproxy_bridge.errors import LabelError

_CERT = re.compile(r"^/[^\s\"'#$\\]+$")
_PATH = re.compile(r"^/[A-Za-z0-9_~./-]*$")
_REDIR = re.compile(r"^(/[^\s\"'#$\\]*|https?://[^\s\"'#$\\]+)$")
_REALM = re.compile(r"^[A-Za-z0-9 _.,@/()+-]+$")
_USER = re.compile(r"^[A-Za-z0-9._@+-]+$")
_CRYPT = re.compile(r"^[A-Za-z0-9./$=+_-]+$")
_TRUE = ("true", "t", "yes", "y", "1", "on")
_FALSE = ("false", "f", "no", "n", "0", "off", "")


@dataclass(frozen=True)
class Auth:
    """``HAPROXY_{n}_AUTH = realm:user:crypt-hash`` (marathon-lb's three fields)."""

    realm: str
    user: str
    password: str


@dataclass(frozen=True)
class Edge:
    """What the edge labels of one service port ask for."""

    ssl_cert: str | None = None
    redirect_to_https: bool = False
    hsts: bool = False
    auth: Auth | None = None
    proxypass_path: str | None = None
    revproxy_path: str | None = None
    redir_path: str | None = None
    network_allowed: tuple[str, ...] = ()

    @property
    def proxypass_regex(self) -> str:
        """The prefix as an HAProxy regex: ``.`` is the only metacharacter the path alphabet allows."""
        return _regex(self.proxypass_path or "")

    @property
    def revproxy_root(self) -> str:
        return (self.revproxy_path or "").rstrip("/")


def flag(value: str | None, label: str) -> bool | None:
    """marathon-lb's truthy words (``true``, ``t``, ``yes``, ``y``) and the usual others; anything else is refused."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise LabelError(f"label {label}: '{value}' is not a boolean")


def host_regex(host: str) -> str:
    return _regex(host)


def _regex(text: str) -> str:
    return text.replace(".", "[.]")


def parse_edge(label: Callable[[str], str | None], index: int, vhosts: tuple[str, ...], mode: str) -> Edge:
    """The edge labels of service port ``index``; ``label(NAME)`` reads ``HAPROXY_{index}_NAME``."""
    name = f"HAPROXY_{index}_"

    def needs(what: str, key: str, vhost: bool = True) -> None:
        if vhost and not vhosts:
            raise LabelError(f"label {name}{key} needs {name}VHOST ({what})")
        if mode != "http":
            raise LabelError(f"label {name}{key} needs HTTP mode ({what}); this port is tcp")

    ssl_cert = label("SSL_CERT")
    if ssl_cert is not None:
        ssl_cert = ssl_cert.strip()
        if not _CERT.match(ssl_cert):
            raise LabelError(f"label {name}SSL_CERT: '{ssl_cert}' is not an absolute path to a PEM file")
    redirect = bool(flag(label("REDIRECT_TO_HTTPS"), f"{name}REDIRECT_TO_HTTPS"))
    if redirect:
        needs("the redirect is made on the shared HTTP frontend, by host", "REDIRECT_TO_HTTPS")
    hsts = bool(flag(label("USE_HSTS"), f"{name}USE_HSTS"))
    if hsts:
        needs("a response header", "USE_HSTS", vhost=False)
    auth = _auth(label("AUTH"), f"{name}AUTH")
    if auth is not None:
        needs("HTTP basic auth", "AUTH", vhost=False)
    proxypass = _path(label("HTTP_BACKEND_PROXYPASS_PATH"), f"{name}HTTP_BACKEND_PROXYPASS_PATH")
    if proxypass is not None:
        needs("the Host header is set to the vhost", "HTTP_BACKEND_PROXYPASS_PATH")
    revproxy = _path(label("HTTP_BACKEND_REVPROXY_PATH"), f"{name}HTTP_BACKEND_REVPROXY_PATH")
    if revproxy is not None:
        needs("Location headers naming the vhost are rewritten", "HTTP_BACKEND_REVPROXY_PATH")
    redir = label("HTTP_BACKEND_REDIR")
    if redir is not None:
        redir = redir.strip()
        if not _REDIR.match(redir):
            raise LabelError(f"label {name}HTTP_BACKEND_REDIR: '{redir}' is neither a path nor an http(s) URL")
        needs("the vhost's / is redirected", "HTTP_BACKEND_REDIR")
    return Edge(
        ssl_cert=ssl_cert,
        redirect_to_https=redirect,
        hsts=hsts,
        auth=auth,
        proxypass_path=proxypass,
        revproxy_path=revproxy,
        redir_path=redir,
        network_allowed=_networks(label("BACKEND_NETWORK_ALLOWED_ACL"), f"{name}BACKEND_NETWORK_ALLOWED_ACL"),
    )


def _auth(value: str | None, label: str) -> Auth | None:
    if value is None:
        return None
    parts = value.split(":")
    if len(parts) != 3:
        raise LabelError(f"label {label}: expected realm:username:encryptedpassword")
    realm, user, password = (p.strip() for p in parts)
    if not _REALM.match(realm):
        raise LabelError(f"label {label}: realm '{realm}' may hold letters, digits, spaces and _.,@/()+- only")
    if not _USER.match(user):
        raise LabelError(f"label {label}: user name '{user}' may hold letters, digits and ._@+- only")
    if not _CRYPT.match(password) or not password.startswith("$"):
        raise LabelError(f"label {label}: the password must be a crypt(3) hash (e.g. from mkpasswd -m sha-512)")
    return Auth(realm, user, password)


def _path(value: str | None, label: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not _PATH.match(value):
        raise LabelError(f"label {label}: '{value}' is not a path (/ followed by letters, digits, _~./-)")
    return value


def _networks(value: str | None, label: str) -> tuple[str, ...]:
    if value is None:
        return ()
    out = []
    for item in value.split():
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise LabelError(f"label {label}: '{item}' is not an address or CIDR range") from None
    if not out:
        raise LabelError(f"label {label} is empty")
    return tuple(out)
