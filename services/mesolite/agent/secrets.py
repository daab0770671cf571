"""Secrets for tasks: Mesos' ``Secret`` messages resolved from ``--secrets_dir``.

Mesos resolves a secret with a SecretResolver module (``--secret_resolver``); its default resolver only returns
VALUE secrets and fails references. mesolite's stand-in for a resolver module is a directory: the secret named
``db/password`` is the file ``<secrets_dir>/db/password``, which must be owned by root and not readable by group or
others (as must the directory), so that a value never sits anywhere a task user or a log collector can read it.
A ``Secret.reference.key`` names a key of a JSON object stored in that file.

Where values go: environment variables of type SECRET (the ``environment_secret`` isolator, always on in Mesos) and
file volumes of type SECRET (``volume/secret``), for the Mesos containerizer only, as in Mesos. The agent itself only
*checks* at launch that every referenced secret resolves (so that a missing one fails the task with its name, never
its value); the values are read by the container init, just before the task starts, straight into the task's
environment or an in-memory file system of the task's own mount namespace. No value is ever written to the agent's
checkpoint, its logs, its API or the sandbox. The image pull secret (``Image.Docker.config``) is resolved in memory
by the agent and used for the registry request only.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from typing import Any


class SecretError(Exception):
    pass


def reference_name(secret: Any) -> tuple[str, str | None]:
    """``(name, key)`` of a REFERENCE secret; raises SecretError for anything else (VALUE handled by callers)."""
    if not isinstance(secret, dict):
        raise SecretError("Secret must be an object")
    kind = secret.get("type")
    if kind == "REFERENCE":
        if "value" in secret:
            raise SecretError("Secret of type REFERENCE must not have the 'value' field set")
        reference = secret.get("reference")
        if not isinstance(reference, dict) or not isinstance(reference.get("name"), str) or not reference["name"]:
            raise SecretError("Secret of type REFERENCE must have the 'reference' field set")
        key = reference.get("key")
        return reference["name"], key if isinstance(key, str) and key else None
    if kind == "VALUE":
        raise SecretError("Secret of type VALUE is resolved without a store")
    raise SecretError(f"Secret of type {kind or 'UNKNOWN'} is not supported")


def validate(secret: Any) -> None:
    """Mesos' validation of a Secret message (src/common/validation.cpp)."""
    if not isinstance(secret, dict):
        raise SecretError("Secret must be an object")
    kind = secret.get("type")
    if kind == "VALUE":
        if "reference" in secret:
            raise SecretError("Secret of type VALUE must not have the 'reference' field set")
        if not isinstance(secret.get("value"), dict) or "data" not in secret["value"]:
            raise SecretError("Secret of type VALUE must have the 'value' field set")
        return
    reference_name(secret)


class SecretResolver:
    def __init__(self, directory: str | None) -> None:
        self.directory = os.path.abspath(directory) if directory else None

    def path(self, name: str) -> str:
        if self.directory is None:
            raise SecretError(
                f"Cannot resolve secret '{name}': this agent has no secret store (start it with --secrets_dir)"
            )
        parts = [p for p in name.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise SecretError(f"Invalid secret name '{name}'")
        return os.path.join(self.directory, *parts)

    def check(self, secret: Any) -> None:
        """That ``secret`` resolves, without reading its value (the launch-time check)."""
        validate(secret)
        if secret.get("type") == "VALUE":
            return
        name, _key = reference_name(secret)
        self._checked_path(name)

    def resolve(self, secret: Any) -> bytes:
        validate(secret)
        if secret.get("type") == "VALUE":
            try:
                return base64.b64decode(str(secret["value"]["data"]), validate=True)
            except ValueError:
                raise SecretError("Secret of type VALUE has data that is not base64") from None
        name, key = reference_name(secret)
        path = self._checked_path(name)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise SecretError(f"Cannot read secret '{name}': {exc.strerror}") from None
        if key is None:
            return data
        try:
            value = json.loads(data).get(key)
        except (ValueError, AttributeError):
            raise SecretError(f"Secret '{name}' is not a JSON object, so it has no key '{key}'") from None
        if value is None:
            raise SecretError(f"Secret '{name}' has no key '{key}'")
        return (value if isinstance(value, str) else json.dumps(value)).encode()

    def _checked_path(self, name: str) -> str:
        path = self.path(name)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise SecretError(f"Secret '{name}' is not found in the secret store") from None
        except OSError as exc:
            raise SecretError(f"Cannot read secret '{name}': {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"Secret '{name}' is not a file in the secret store")
        if info.st_uid != 0 or info.st_mode & 0o077:
            raise SecretError(
                f"Secret '{name}' is readable by others than root: the secret store's files must be root's, mode 0600"
            )
        return path


def check_store(directory: str) -> None:
    """``--secrets_dir`` at start-up: root's, not open to others (a readable store would leak every secret)."""
    try:
        info = os.stat(directory)
    except OSError as exc:
        raise SecretError(f"--secrets_dir {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise SecretError(f"--secrets_dir {directory} is not a directory")
    if info.st_uid != 0 or info.st_mode & 0o077:
        raise SecretError(f"--secrets_dir {directory} must be owned by root with mode 0700 (it is {info.st_mode:o})")
