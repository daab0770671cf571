"""Pulls from a Docker registry over its v2 API (Mesos' registry_puller.cpp and uri/fetchers/docker.cpp).

Credentials come from a Docker config (``--docker_config``: a path or inline JSON, ``{"auths": {...}}`` or the flat
``.dockercfg`` form) and, winning over it, the image's own pull config (``Image.Docker.config``, a secret). Like
Mesos, a matching ``auth`` goes out as ``Authorization: Basic`` on the first request; a ``Bearer`` challenge is
answered with a token from its realm (with those credentials), and a ``Basic`` challenge means the registry refused
what was sent. Manifests of schema 2 (and OCI) and schema 1 are understood; every blob is checked against its digest
before it is unpacked. Redirects (blob storage) are followed without the credentials when they leave the registry.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import os
import re
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from mesolite.agent.images.reference import Endpoint, ImageReference, credentials_match, endpoint
from mesolite.agent.images.store import ImageStore, StoredImage, StoreError

log = logging.getLogger(__name__)

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
ACCEPT = ", ".join((MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST, OCI_INDEX, MANIFEST_V1, MANIFEST_V1_SIGNED))
TIMEOUT = 60.0
MAX_REDIRECTS = 5
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class PullError(Exception):
    pass


# ---------------------------------------------------------------------------------------------- Docker configs


def parse_docker_config(text: str | bytes | None) -> dict[str, str]:
    """``{registry key: base64(user:password)}`` from a Docker config.json or a .dockercfg (path or JSON text)."""
    if not text:
        return {}
    if isinstance(text, bytes):
        text = text.decode()
    text = text.strip()
    if not text.startswith("{"):
        with open(text) as handle:
            text = handle.read()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PullError(f"The Docker config is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PullError("The Docker config is not a JSON object")
    entries: dict[str, Any] = data["auths"] if isinstance(data.get("auths"), dict) else data
    out: dict[str, str] = {}
    for key, value in entries.items():
        if isinstance(value, dict):
            auth = value.get("auth")
            if not auth and value.get("username"):
                auth = base64.b64encode(f"{value['username']}:{value.get('password', '')}".encode()).decode()
            if isinstance(auth, str) and auth:
                out[str(key)] = auth
    return out


def find_auth(configs: list[dict[str, str]], host: str) -> str | None:
    """The first matching ``auth`` of ``configs`` (the most specific first)."""
    for config in configs:
        for key, auth in config.items():
            if credentials_match(key, host):
                return auth
    return None


# ---------------------------------------------------------------------------------------------- HTTP


@dataclass
class _Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: http.client.HTTPResponse
    connection: http.client.HTTPConnection

    def read(self) -> bytes:
        try:
            return self.body.read()
        finally:
            self.close()

    def close(self) -> None:
        self.body.close()
        self.connection.close()

    @property
    def line(self) -> str:
        return f"{self.status} {self.reason}".strip()


def _request(url: str, headers: dict[str, str]) -> _Response:
    """GET ``url``, following redirects; credentials are dropped when a redirect leaves the host."""
    origin = urlsplit(url).netloc
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context()
            connection = http.client.HTTPSConnection(parts.netloc, timeout=TIMEOUT, context=context)
        elif parts.scheme == "http":
            connection = http.client.HTTPConnection(parts.netloc, timeout=TIMEOUT)
        else:
            raise PullError(f"Unsupported URL scheme in '{url}'")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        sent = dict(headers) if parts.netloc == origin else {k: v for k, v in headers.items() if k != "Authorization"}
        try:
            connection.request("GET", path, headers=sent)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise PullError(f"Failed to reach '{parts.scheme}://{parts.netloc}': {exc}") from None
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            response.read()
            connection.close()
            url = urljoin(url, response.getheader("Location") or "")
            continue
        return _Response(response.status, response.reason, response.headers, response, connection)
    raise PullError(f"Too many redirects fetching '{url}'")


class RegistryClient:
    """One registry, one repository: manifests and blobs with the right credentials."""

    def __init__(self, where: Endpoint, auth: str | None) -> None:
        self.endpoint = where
        self._basic = auth
        self._token: str | None = None

    def _headers(self, accept: str | None = None) -> dict[str, str]:
        headers = {"User-Agent": "mesolite-agent"}
        if accept:
            headers["Accept"] = accept
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        elif self._basic:
            headers["Authorization"] = f"Basic {self._basic}"
        return headers

    def get(self, path: str, what: str, accept: str | None = None) -> _Response:
        url = f"{self.endpoint.base_url}/v2/{self.endpoint.repository}/{path}"
        response = _request(url, self._headers(accept))
        if response.status == 401 and self._token is None:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.read()
            self._authenticate(challenge, what)
            response = _request(url, self._headers(accept))
        if response.status != 200:
            body = response.read()[:300].decode(errors="replace").strip()
            detail = f": {body}" if body else ""
            raise PullError(f"Unexpected HTTP response '{response.line}' when trying to get the {what}{detail}")
        return response

    def _authenticate(self, challenge: str, what: str) -> None:
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if self._basic:
                raise PullError(
                    f"Got unexpected BASIC Authorization response status '401 Unauthorized' when trying to get the "
                    f"{what}: the registry at {self.endpoint.base_url} refused the credentials"
                )
            raise PullError(
                f"Got unexpected BASIC Authorization response status '401 Unauthorized' when trying to get the "
                f"{what}: the registry at {self.endpoint.base_url} needs credentials (--docker_config)"
            )
        if scheme != "bearer":
            raise PullError(f"Unsupported authentication challenge '{challenge}' from {self.endpoint.base_url}")
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise PullError(f"The registry's Bearer challenge has no realm: '{challenge}'")
        query = {"service": params.get("service", self.endpoint.host)}
        query["scope"] = params.get("scope") or f"repository:{self.endpoint.repository}:pull"
        headers = {"User-Agent": "mesolite-agent"}
        if self._basic:
            headers["Authorization"] = f"Basic {self._basic}"
        response = _request(f"{realm}?{urlencode(query)}", headers)
        body = response.read()
        if response.status != 200:
            raise PullError(f"Unexpected HTTP response '{response.line}' when trying to get the auth token")
        try:
            token = json.loads(body).get("token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise PullError("The registry's token service answered no 'token'")
        self._token = token

    def manifest(self, reference: str) -> tuple[str, dict[str, Any]]:
        response = self.get(f"manifests/{reference}", "manifest", ACCEPT)
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        body = response.read()
        try:
            manifest = json.loads(body)
        except ValueError:
            raise PullError("The registry answered a manifest that is not JSON") from None
        if not isinstance(manifest, dict):
            raise PullError("The registry answered a manifest that is not a JSON object")
        return manifest.get("mediaType") or media_type, manifest

    def blob(self, digest: str) -> _Response:
        return self.get(f"blobs/{digest}", f"blob '{digest}'")


# ---------------------------------------------------------------------------------------------- pulling


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise PullError(f"Unsupported digest '{digest}'")
    return value


def pull(store: ImageStore, ref: ImageReference, default_registry: str, configs: list[dict[str, str]]) -> StoredImage:
    """Fetch ``ref``'s manifest, config and missing layers into ``store``; answers the stored image."""
    where = endpoint(ref, default_registry)
    client = RegistryClient(where, find_auth(configs, where.host))
    media_type, manifest = client.manifest(ref.reference)
    if media_type in (MANIFEST_LIST, OCI_INDEX) or "manifests" in manifest:
        media_type, manifest = client.manifest(_platform_manifest(manifest))
    with store.staging() as staging:
        if manifest.get("schemaVersion") == 1:
            layers, config = _schema1(client, store, manifest, staging)
        else:
            layers, config = _schema2(client, store, manifest, staging)
    image = StoredImage(ref.canonical(), layers, config)
    store.put(image)
    return image


def _platform_manifest(index: dict[str, Any]) -> str:
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        if platform.get("os", "linux") == "linux" and platform.get("architecture") == machine:
            return str(entry["digest"])
    raise PullError(f"The image has no manifest for linux/{machine}")


def _schema2(
    client: RegistryClient, store: ImageStore, manifest: dict[str, Any], staging: str
) -> tuple[list[str], dict[str, Any]]:
    config_digest = (manifest.get("config") or {}).get("digest")
    if not isinstance(config_digest, str):
        raise PullError("The manifest names no image config")
    raw = _verified(client.blob(config_digest), config_digest)
    try:
        image_config = json.loads(raw)
    except ValueError:
        raise PullError("The image config is not JSON") from None
    layers = []
    for layer in manifest.get("layers") or []:
        digest = str(layer.get("digest"))
        layer_id = _hex(digest)
        layers.append(layer_id)
        _fetch_layer(client, store, layer_id, digest, staging, {"digest": digest})
    return layers, dict(image_config.get("config") or {})


def _schema1(
    client: RegistryClient, store: ImageStore, manifest: dict[str, Any], staging: str
) -> tuple[list[str], dict[str, Any]]:
    """Schema 1 lists layers top first, each with its v1 JSON in ``history``; the top one's config is the image's."""
    fs_layers = manifest.get("fsLayers") or []
    history = manifest.get("history") or []
    layers: list[str] = []
    for index in reversed(range(len(fs_layers))):
        digest = str(fs_layers[index].get("blobSum"))
        layer_id = _hex(digest)
        if layer_id not in layers:
            layers.append(layer_id)
        _fetch_layer(client, store, layer_id, digest, staging, {"digest": digest})
    config: dict[str, Any] = {}
    if history:
        try:
            v1 = json.loads(history[0].get("v1Compatibility") or "{}")
            config = dict(v1.get("config") or {})
        except ValueError:
            raise PullError("The manifest's v1Compatibility is not JSON") from None
    return layers, config


def _fetch_layer(
    client: RegistryClient, store: ImageStore, layer_id: str, digest: str, staging: str, config: dict[str, Any]
) -> None:
    if store.has_layer(layer_id):
        return
    response = client.blob(digest)
    # Downloaded whole first: a blob is checked against its digest before one byte of it is unpacked.
    with tempfile.TemporaryFile(dir=staging) as blob:
        try:
            while chunk := response.body.read(1 << 20):
                blob.write(chunk)
        except (OSError, http.client.HTTPException) as exc:
            raise PullError(f"Failed to download blob '{digest}': {exc}") from None
        finally:
            response.close()
        blob.seek(0)
        sha = hashlib.sha256()
        while chunk := blob.read(1 << 20):
            sha.update(chunk)
        if sha.hexdigest() != layer_id:
            raise PullError(f"Blob '{digest}' is corrupt: its sha256 is {sha.hexdigest()}")
        blob.seek(0)
        try:
            store.add_layer(layer_id, blob, staging, config)
        except StoreError as exc:
            raise PullError(str(exc)) from None


def _verified(response: _Response, digest: str) -> bytes:
    data = response.read()
    if hashlib.sha256(data).hexdigest() != _hex(digest):
        raise PullError(f"Blob '{digest}' is corrupt")
    return data
