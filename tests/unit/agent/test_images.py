"""Image references, registry credentials, the image config × CommandInfo merge and the secret store, as Mesos
defines them (containers-pods-edge reference §1.2–1.4, §2.1)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from mesolite.agent.config import from_args
from mesolite.agent.docker_containerizer import registry_auth
from mesolite.agent.images.reference import ImageReference, ReferenceError, endpoint
from mesolite.agent.images.registry import find_auth, parse_docker_config
from mesolite.agent.images.runtime import PrepareError, launch_command
from mesolite.agent.secrets import SecretError, SecretResolver
from mesolite.core.flags import FlagError
from tests.cli_args import parse, refusal


@pytest.mark.parametrize(
    ("name", "registry", "repository", "tag", "printed"),
    [
        ("busybox", None, "busybox", None, "busybox"),
        ("busybox:latest", None, "busybox", "latest", "busybox:latest"),
        ("gilbert/inky:1.0", None, "gilbert/inky", "1.0", "gilbert/inky:1.0"),
        ("localhost/app", "localhost", "app", None, "localhost/app"),
        ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000", "team/app", "v2", "127.0.0.1:5000/team/app:v2"),
        ("registry.example.com/app", "registry.example.com", "app", None, "registry.example.com/app"),
    ],
)
def test_reference_parsing(name: str, registry: str | None, repository: str, tag: str | None, printed: str) -> None:
    ref = ImageReference.parse(name)
    assert (ref.registry, ref.repository, ref.tag, ref.printed()) == (registry, repository, tag, printed)
    assert ref.reference == (tag or "latest")


def test_bad_references_are_refused() -> None:
    for name in ("", "UPPER/case", "busybox:bad tag", "busybox@sha256:xyz"):
        with pytest.raises(ReferenceError):
            ImageReference.parse(name)


def test_endpoint_scheme_and_library_prefix() -> None:
    assert endpoint(ImageReference.parse("busybox")).base_url == "https://registry-1.docker.io"
    assert endpoint(ImageReference.parse("busybox")).repository == "library/busybox"
    assert endpoint(ImageReference.parse("127.0.0.1:5000/busybox")).scheme == "http"
    assert endpoint(ImageReference.parse("localhost:5000/busybox")).scheme == "http"
    assert endpoint(ImageReference.parse("registry.example.com:5000/busybox")).scheme == "https"
    assert endpoint(ImageReference.parse("registry.example.com:80/busybox")).scheme == "http"
    own = endpoint(ImageReference.parse("team/app"), "http://10.0.0.1:5000")
    assert (own.base_url, own.repository) == ("http://10.0.0.1:5000", "team/app")


def test_docker_config_forms_and_matching() -> None:
    auth = base64.b64encode(b"u:p").decode()
    modern = parse_docker_config(json.dumps({"auths": {"https://127.0.0.1:5000/v2/": {"auth": auth}}}))
    flat = parse_docker_config(json.dumps({"https://index.docker.io/v1/": {"auth": auth, "email": "x"}}))
    assert find_auth([modern], "127.0.0.1:5000") == auth
    assert find_auth([modern], "127.0.0.1:5001") is None
    assert find_auth([flat], "registry-1.docker.io") == auth  # both contain docker.io


def test_docker_task_credentials_prefer_the_sandbox(tmp_path: Path) -> None:
    flag = json.dumps({"auths": {"127.0.0.1:5000": {"auth": base64.b64encode(b"agent:a").decode()}}})
    assert registry_auth("127.0.0.1:5000/app", str(tmp_path), flag) == {
        "username": "agent",
        "password": "a",
        "serveraddress": "127.0.0.1:5000",
    }
    (tmp_path / ".docker").mkdir()
    fetched = {"auths": {"127.0.0.1:5000": {"auth": base64.b64encode(b"task:t").decode()}}}
    (tmp_path / ".docker" / "config.json").write_text(json.dumps(fetched))
    assert registry_auth("127.0.0.1:5000/app", str(tmp_path), flag)["username"] == "task"  # type: ignore[index]
    assert registry_auth("other.example.com/app", str(tmp_path), flag) is None


IMAGE = {"Entrypoint": ["/entry", "-x"], "Cmd": ["default"]}


@pytest.mark.parametrize(
    ("command", "config", "argv", "executable"),
    [
        ({"value": "echo hi"}, IMAGE, ["/bin/sh", "-c", "echo hi"], "/bin/sh"),
        ({"shell": False, "value": "/bin/app", "arguments": ["app", "1"]}, IMAGE, ["app", "1"], "/bin/app"),
        ({"shell": False}, IMAGE, ["/entry", "-x", "default"], "/entry"),
        ({"shell": False, "arguments": ["a", "b"]}, IMAGE, ["/entry", "-x", "a", "b"], "/entry"),
        ({"shell": False}, {"Cmd": ["/bin/sh", "-c", "x"]}, ["/bin/sh", "-c", "x"], "/bin/sh"),
        ({"shell": False, "arguments": ["-l"]}, {"Cmd": ["/bin/sh", "-c", "x"]}, ["/bin/sh", "-l"], "/bin/sh"),
    ],
)
def test_image_config_merges_with_the_command_as_mesos_does(
    command: dict, config: dict, argv: list[str], executable: str
) -> None:
    assert launch_command(command, config) == (argv, executable)


def test_merge_errors_are_mesos_messages() -> None:
    with pytest.raises(PrepareError, match="Shell specified but no command value provided"):
        launch_command({"shell": True}, IMAGE)
    with pytest.raises(PrepareError, match="No executable is found"):
        launch_command({"shell": False}, {})


def test_secret_store_is_root_only_and_resolves_names_and_keys(tmp_path: Path) -> None:
    store = tmp_path / "secrets"
    (store / "db").mkdir(parents=True)
    (store / "db" / "password").write_text("hunter2")
    (store / "json").write_text(json.dumps({"user": "u", "pass": "p"}))
    (store / "open").write_text("x")
    for path in (store / "db" / "password", store / "json"):
        os.chmod(path, 0o600)
    os.chmod(store / "open", 0o644)
    resolver = SecretResolver(str(store))

    def ref(name: str, key: str | None = None) -> dict:
        return {"type": "REFERENCE", "reference": {"name": name, **({"key": key} if key else {})}}

    assert resolver.resolve(ref("/db/password")) == b"hunter2"
    assert resolver.resolve(ref("json", "pass")) == b"p"
    assert resolver.resolve({"type": "VALUE", "value": {"data": base64.b64encode(b"v").decode()}}) == b"v"
    with pytest.raises(SecretError, match="is not found"):
        resolver.check(ref("missing"))
    with pytest.raises(SecretError, match="readable by others"):
        resolver.check(ref("open"))
    with pytest.raises(SecretError, match="Invalid secret name"):
        resolver.check(ref("../etc/passwd"))
    with pytest.raises(SecretError, match="no secret store"):
        SecretResolver(None).check(ref("db/password"))


def test_image_flags_need_the_isolators_mesos_requires() -> None:
    required = ("agent", "--master", "127.0.0.1:5050", "--work_dir", "/var/lib/a")
    with pytest.raises(FlagError, match="filesystem/linux and docker/runtime"):
        from_args(parse(*required, "--image_providers", "docker"))
    with pytest.raises(FlagError, match="Unknown or unsupported isolator 'network/port_mapping'"):
        from_args(parse(*required, "--isolation", "network/port_mapping"))
    assert "unsupported image provider 'appc'" in refusal(*required, "--image_providers", "appc")
    config = from_args(
        parse(
            *required,
            "--isolation=filesystem/linux,docker/runtime,namespaces/pid",
            "--image_providers=DOCKER",
            "--docker_registry=/srv/images",
            "--image_provisioner_backend=copy",
            "--secrets_dir=/etc/mesolite/secrets",
        )
    )
    assert config.image_providers == ("docker",)
    assert (config.docker_registry, config.image_provisioner_backend) == ("/srv/images", "copy")
    assert config.secrets_dir == "/etc/mesolite/secrets"
