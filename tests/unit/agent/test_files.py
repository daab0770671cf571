"""The agent's /files endpoints: Mesos-compatible answers, and no way out of the sandboxes."""

from __future__ import annotations

import grp
import json
import os
import pwd
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mesolite.agent.files import FilesError, SandboxFiles, files_blueprint, max_read_length

AID, FID, EID, CID = "A1-S0", "F1-0000", "web.1234", "c0ffee-01"
MTIME = 1_700_000_000
STDOUT = b"line one\nline two\nline three\n"
VIRTUAL = f"/frameworks/{FID}/executors/{EID}/runs/latest"


class Sandbox:
    """A fake agent work_dir with one executor run, a ``latest`` link and a few hostile links."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.runs = work_dir / "slaves" / AID / "frameworks" / FID / "executors" / EID / "runs"
        self.run = self.runs / CID
        self.latest = self.runs / "latest"
        self.virtual: dict[str, str] = {VIRTUAL: str(self.run)}
        self.virtual_calls = 0

        (self.run / "subdir").mkdir(parents=True)
        self.write("stdout", STDOUT)
        self.write("stderr", b"")
        self.write("subdir/nested.txt", b"nested\n")
        self.write("binary.bin", bytes(range(256)))
        os.chmod(self.run / "subdir", 0o755)
        for name in ("stdout", "stderr", "binary.bin", "subdir"):
            os.utime(self.run / name, (MTIME, MTIME))
        self.latest.symlink_to(CID)

        # Outside the sandboxes but inside work_dir: the agent's checkpoints must stay private.
        (work_dir / "meta").mkdir()
        (work_dir / "meta" / "secret").write_text("checkpoint\n")
        (self.run / "passwd").symlink_to("/etc/passwd")
        (self.run / "meta-link").symlink_to(work_dir / "meta")
        (self.run / "inner-link").symlink_to("subdir/nested.txt")

    def write(self, rel: str, data: bytes) -> Path:
        target = self.run / rel
        target.write_bytes(data)
        os.chmod(target, 0o644)
        return target

    def virtual_paths(self) -> dict[str, str]:
        self.virtual_calls += 1
        return dict(self.virtual)

    def files(self) -> SandboxFiles:
        return SandboxFiles(str(self.work_dir), self.virtual_paths)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


@pytest.fixture
def client(sandbox: Sandbox) -> FlaskClient:
    app = Flask(__name__)
    app.register_blueprint(files_blueprint(sandbox.files))
    return app.test_client()


def get_json(client: FlaskClient, url: str, **query: Any) -> tuple[int, Any]:
    resp = client.get(url, query_string=query)
    assert resp.mimetype == "application/json", resp.get_data(as_text=True)
    return resp.status_code, resp.get_json()


def get_error(client: FlaskClient, url: str, **query: Any) -> tuple[int, str]:
    resp = client.get(url, query_string=query)
    assert resp.mimetype == "text/plain"
    return resp.status_code, resp.get_data(as_text=True)


# -- browse --


def test_browse_lists_entries_with_mesos_fields(client: FlaskClient, sandbox: Sandbox) -> None:
    status, entries = get_json(client, "/files/browse", path=str(sandbox.run))
    assert status == 200
    by_name = {e["path"].rsplit("/", 1)[1]: e for e in entries}
    assert sorted(by_name) == [
        "binary.bin",
        "inner-link",
        "meta-link",
        "passwd",
        "stderr",
        "stdout",
        "subdir",
    ]
    assert [e["path"] for e in entries] == sorted(e["path"] for e in entries)

    stdout = by_name["stdout"]
    assert set(stdout) == {"path", "nlink", "size", "mtime", "mode", "uid", "gid"}
    assert stdout["path"] == f"{sandbox.run}/stdout"
    assert stdout["size"] == len(STDOUT)
    assert stdout["nlink"] == 1
    assert stdout["mtime"] == MTIME and isinstance(stdout["mtime"], int)
    assert stdout["mode"] == "-rw-r--r--"
    assert stdout["uid"] == pwd.getpwuid(os.getuid()).pw_name
    assert stdout["gid"] == grp.getgrgid(os.getgid()).gr_name

    subdir = by_name["subdir"]
    assert subdir["mode"] == "drwxr-xr-x"
    assert subdir["mtime"] == MTIME
    assert isinstance(subdir["nlink"], int) and subdir["nlink"] >= 2


def test_browse_links_inside_show_target_links_outside_show_only_the_link(
    client: FlaskClient, sandbox: Sandbox
) -> None:
    _, entries = get_json(client, "/files/browse", path=str(sandbox.run))
    by_name = {e["path"].rsplit("/", 1)[1]: e for e in entries}
    assert by_name["inner-link"]["mode"] == "-rw-r--r--"
    assert by_name["inner-link"]["size"] == len(b"nested\n")
    # Metadata of /etc/passwd and of the agent's meta dir must not leak through the listing.
    assert by_name["passwd"]["mode"].startswith("l")
    assert by_name["passwd"]["size"] == len("/etc/passwd")
    assert by_name["meta-link"]["mode"].startswith("l")


def test_browse_virtual_path_keeps_virtual_form(client: FlaskClient) -> None:
    status, entries = get_json(client, "/files/browse", path=VIRTUAL + "/")
    assert status == 200
    paths = [e["path"] for e in entries]
    assert f"{VIRTUAL}/stdout" in paths
    assert f"{VIRTUAL}/subdir" in paths
    assert all(p.startswith(VIRTUAL + "/") for p in paths)


def test_browse_subdirectory_of_virtual_path(client: FlaskClient) -> None:
    status, entries = get_json(client, "/files/browse.json", path=f"{VIRTUAL}/subdir")
    assert status == 200
    assert [e["path"] for e in entries] == [f"{VIRTUAL}/subdir/nested.txt"]
    assert entries[0]["size"] == 7


def test_browse_file_returns_its_own_entry(client: FlaskClient) -> None:
    status, entries = get_json(client, "/files/browse", path=f"{VIRTUAL}/stdout")
    assert status == 200
    assert len(entries) == 1
    assert entries[0]["path"] == f"{VIRTUAL}/stdout"
    assert entries[0]["size"] == len(STDOUT)
    assert entries[0]["mode"] == "-rw-r--r--"


def test_browse_empty_directory(client: FlaskClient, sandbox: Sandbox) -> None:
    (sandbox.run / "empty").mkdir()
    assert get_json(client, "/files/browse", path=f"{VIRTUAL}/empty") == (200, [])


# -- read --


def test_read_with_offset_and_length(client: FlaskClient) -> None:
    status, body = get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset=5, length=8)
    assert status == 200
    assert body == {"offset": 5, "data": "one\nline"}


def test_read_json_suffix_alias(client: FlaskClient) -> None:
    assert get_json(client, "/files/read.json", path=f"{VIRTUAL}/stdout", offset=0, length=4) == (
        200,
        {"offset": 0, "data": "line"},
    )


def test_read_without_length_reads_to_end(client: FlaskClient) -> None:
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset=9) == (
        200,
        {"offset": 9, "data": "line two\nline three\n"},
    )


@pytest.mark.parametrize("query", [{}, {"offset": -1}, {"offset": -1, "length": 10}])
def test_read_without_offset_answers_the_size(client: FlaskClient, query: dict[str, int]) -> None:
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", **query) == (
        200,
        {"offset": len(STDOUT), "data": ""},
    )


def test_read_empty_offset_counts_as_missing(client: FlaskClient) -> None:
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset="") == (
        200,
        {"offset": len(STDOUT), "data": ""},
    )


def test_read_past_the_end_is_empty_not_an_error(client: FlaskClient) -> None:
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset=10_000, length=5) == (
        200,
        {"offset": 10_000, "data": ""},
    )


def test_read_length_zero(client: FlaskClient) -> None:
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset=0, length=0) == (
        200,
        {"offset": 0, "data": ""},
    )


def test_read_is_capped_at_sixteen_pages(client: FlaskClient, sandbox: Sandbox) -> None:
    cap = os.sysconf("SC_PAGE_SIZE") * 16
    assert max_read_length() == cap
    sandbox.write("big.log", b"x" * (cap + 100))
    _, no_length = get_json(client, "/files/read", path=f"{VIRTUAL}/big.log", offset=0)
    assert no_length == {"offset": 0, "data": "x" * cap}
    _, huge = get_json(client, "/files/read", path=f"{VIRTUAL}/big.log", offset=0, length=cap * 10)
    assert huge == {"offset": 0, "data": "x" * cap}
    _, tail = get_json(client, "/files/read", path=f"{VIRTUAL}/big.log", offset=cap)
    assert tail == {"offset": cap, "data": "x" * 100}
    _, size = get_json(client, "/files/read", path=f"{VIRTUAL}/big.log")
    assert size == {"offset": cap + 100, "data": ""}


def test_read_replaces_invalid_utf8(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.write("mixed", b"ok \xff\xfe done \xc3\xa9")
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/mixed", offset=0) == (
        200,
        {"offset": 0, "data": "ok \ufffd\ufffd done \u00e9"},
    )


def test_read_real_sandbox_path(client: FlaskClient, sandbox: Sandbox) -> None:
    assert get_json(client, "/files/read", path=str(sandbox.run / "stdout"), offset=0, length=8) == (
        200,
        {"offset": 0, "data": "line one"},
    )


def test_read_real_latest_symlink_path(client: FlaskClient, sandbox: Sandbox) -> None:
    assert get_json(client, "/files/read", path=str(sandbox.latest / "subdir" / "nested.txt"), offset=0) == (
        200,
        {"offset": 0, "data": "nested\n"},
    )


def test_read_link_that_stays_inside(client: FlaskClient) -> None:
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/inner-link", offset=0) == (
        200,
        {"offset": 0, "data": "nested\n"},
    )


def test_read_growing_file_sees_new_bytes(client: FlaskClient, sandbox: Sandbox) -> None:
    _, first = get_json(client, "/files/read", path=f"{VIRTUAL}/stdout")
    with open(sandbox.run / "stdout", "ab") as fh:
        fh.write(b"more\n")
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset=first["offset"]) == (
        200,
        {"offset": len(STDOUT), "data": "more\n"},
    )


def test_read_directory_is_400(client: FlaskClient) -> None:
    status, text = get_error(client, "/files/read", path=f"{VIRTUAL}/subdir", offset=0)
    assert status == 400
    assert text == f"Cannot read '{VIRTUAL}/subdir': it is a directory"


def test_read_fifo_is_400_without_blocking(client: FlaskClient, sandbox: Sandbox) -> None:
    os.mkfifo(sandbox.run / "pipe")
    status, text = get_error(client, "/files/read", path=f"{VIRTUAL}/pipe", offset=0)
    assert status == 400
    assert text == f"Cannot read '{VIRTUAL}/pipe': it is not a regular file"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"offset": "abc"}, "Failed to parse 'offset': 'abc' is not an integer"),
        ({"offset": "1.5"}, "Failed to parse 'offset': '1.5' is not an integer"),
        ({"offset": 0, "length": "ten"}, "Failed to parse 'length': 'ten' is not an integer"),
        ({"offset": 0, "length": -1}, "Negative length provided: -1"),
        ({"offset": -2}, "Negative offset provided: -2"),
    ],
)
def test_read_bad_offset_or_length_is_400(client: FlaskClient, query: dict[str, Any], message: str) -> None:
    assert get_error(client, "/files/read", path=f"{VIRTUAL}/stdout", **query) == (400, message)


# -- download --


def test_download_returns_raw_bytes(client: FlaskClient, sandbox: Sandbox) -> None:
    resp = client.get("/files/download", query_string={"path": f"{VIRTUAL}/binary.bin"})
    assert resp.status_code == 200
    assert resp.data == bytes(range(256))
    assert resp.headers["Content-Disposition"] == "attachment; filename=binary.bin"
    resp.close()


def test_download_json_alias_and_real_path(client: FlaskClient, sandbox: Sandbox) -> None:
    resp = client.get("/files/download.json", query_string={"path": str(sandbox.latest / "stdout")})
    assert resp.status_code == 200
    assert resp.data == STDOUT
    resp.close()


def test_download_directory_is_400(client: FlaskClient) -> None:
    assert get_error(client, "/files/download", path=VIRTUAL) == (
        400,
        f"Cannot download '{VIRTUAL}': it is a directory",
    )


def test_download_path_gives_real_file(sandbox: Sandbox) -> None:
    real = sandbox.files().download_path(f"{VIRTUAL}/stdout")
    assert real == os.path.realpath(sandbox.run / "stdout")
    with pytest.raises(FilesError) as info:
        sandbox.files().download_path(f"{VIRTUAL}/subdir")
    assert info.value.status == 400


# -- confinement --


@pytest.mark.parametrize("endpoint", ["/files/browse", "/files/read", "/files/download"])
@pytest.mark.parametrize(
    "path_of",
    [
        pytest.param(lambda s: "/etc/passwd", id="absolute-outside"),
        pytest.param(lambda s: "/etc", id="absolute-dir-outside"),
        pytest.param(lambda s: f"{VIRTUAL}/passwd", id="symlink-to-etc-passwd"),
        pytest.param(lambda s: str(s.run / "passwd"), id="symlink-real-form"),
        pytest.param(lambda s: f"{VIRTUAL}/meta-link/secret", id="symlink-to-work-dir-meta"),
        pytest.param(lambda s: str(s.work_dir / "meta" / "secret"), id="work-dir-outside-slaves"),
        pytest.param(lambda s: "/frameworks/unknown/executors/x/runs/latest", id="unknown-virtual"),
        pytest.param(lambda s: "etc/passwd", id="relative"),
    ],
)
def test_outside_the_sandboxes_is_403(client: FlaskClient, sandbox: Sandbox, endpoint: str, path_of: Any) -> None:
    path = path_of(sandbox)
    status, text = get_error(client, endpoint, path=path, offset=0)
    assert status == 403
    assert text == f"Access to '{path}' is denied: it is outside the agent's sandboxes"


@pytest.mark.parametrize(
    "path_of",
    [
        pytest.param(lambda s: f"{VIRTUAL}/subdir/../stdout", id="stays-inside"),
        pytest.param(lambda s: str(s.run / "subdir" / ".." / "stdout"), id="real-stays-inside"),
        pytest.param(lambda s: f"{VIRTUAL}/../../../../../../../../etc/passwd", id="escapes"),
        pytest.param(lambda s: "..", id="bare"),
    ],
)
def test_dotdot_is_refused_even_inside(client: FlaskClient, sandbox: Sandbox, path_of: Any) -> None:
    path = path_of(sandbox)
    status, text = get_error(client, "/files/read", path=path, offset=0)
    assert status == 403
    assert text == f"Access to '{path}' is denied: '..' is not allowed in paths"


def test_prefix_sibling_of_slaves_is_not_inside(client: FlaskClient, sandbox: Sandbox) -> None:
    sibling = sandbox.work_dir / "slaves-other"
    sibling.mkdir()
    (sibling / "f").write_text("no")
    assert get_error(client, "/files/read", path=str(sibling / "f"), offset=0)[0] == 403


def test_virtual_paths_are_looked_up_per_request(client: FlaskClient, sandbox: Sandbox) -> None:
    other = sandbox.runs / "c0ffee-02"
    other.mkdir()
    (other / "stdout").write_bytes(b"second run\n")
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset=0)[1]["data"] == STDOUT.decode()
    sandbox.virtual[VIRTUAL] = str(other)
    assert get_json(client, "/files/read", path=f"{VIRTUAL}/stdout", offset=0) == (
        200,
        {"offset": 0, "data": "second run\n"},
    )
    assert sandbox.virtual_calls == 2


def test_virtual_root_outside_slaves_is_servable(client: FlaskClient, sandbox: Sandbox) -> None:
    logs = sandbox.work_dir / "logs"
    logs.mkdir()
    (logs / "mesos-slave.INFO").write_text("agent log\n")
    sandbox.virtual["/slave/log"] = str(logs / "mesos-slave.INFO")
    assert get_json(client, "/files/read", path="/slave/log", offset=0) == (
        200,
        {"offset": 0, "data": "agent log\n"},
    )
    # Only the attached file itself, not its neighbours.
    (logs / "other").write_text("x")
    assert get_error(client, "/files/read", path=str(logs / "other"), offset=0)[0] == 403


def test_resolve_maps_every_accepted_form_to_the_same_place(sandbox: Sandbox) -> None:
    files = sandbox.files()
    expected = os.path.realpath(sandbox.run / "stdout")
    assert files.resolve(f"{VIRTUAL}/stdout") == expected
    assert files.resolve(f"{VIRTUAL}//./stdout") == expected
    assert files.resolve(str(sandbox.run / "stdout")) == expected
    assert files.resolve(str(sandbox.latest / "stdout")) == expected


# -- missing things and bad requests --


@pytest.mark.parametrize("endpoint", ["/files/browse", "/files/read", "/files/download"])
def test_missing_file_is_404(client: FlaskClient, sandbox: Sandbox, endpoint: str) -> None:
    path = f"{VIRTUAL}/nope.txt"
    assert get_error(client, endpoint, path=path, offset=0) == (404, f"No such file or directory: '{path}'")
    real = str(sandbox.run / "nope" / "deeper")
    assert get_error(client, endpoint, path=real, offset=0) == (404, f"No such file or directory: '{real}'")


def test_dangling_link_is_404(client: FlaskClient, sandbox: Sandbox) -> None:
    (sandbox.run / "dangling").symlink_to("gone")
    assert get_error(client, "/files/read", path=f"{VIRTUAL}/dangling", offset=0)[0] == 404


def test_link_loop_is_404(client: FlaskClient, sandbox: Sandbox) -> None:
    (sandbox.run / "loop-a").symlink_to("loop-b")
    (sandbox.run / "loop-b").symlink_to("loop-a")
    assert get_error(client, "/files/read", path=f"{VIRTUAL}/loop-a", offset=0)[0] == 404


@pytest.mark.parametrize("endpoint", ["/files/browse", "/files/read", "/files/download", "/files/read.json"])
def test_missing_path_parameter_is_400(client: FlaskClient, endpoint: str) -> None:
    assert get_error(client, endpoint) == (400, "Expecting 'path' to be present in query")


def test_empty_path_is_400(client: FlaskClient) -> None:
    assert get_error(client, "/files/browse", path="") == (400, "Expecting 'path' to be non-empty")


def test_nul_byte_is_400(client: FlaskClient) -> None:
    assert get_error(client, "/files/read", path=f"{VIRTUAL}/stdout\x00x", offset=0) == (
        400,
        "Invalid 'path': it contains a NUL byte",
    )


# -- JSONP --


def test_jsonp_wraps_read_and_browse(client: FlaskClient) -> None:
    resp = client.get("/files/read", query_string={"path": f"{VIRTUAL}/stdout", "jsonp": "JSON_CALLBACK"})
    assert resp.status_code == 200
    assert resp.mimetype == "text/javascript"
    body = resp.get_data(as_text=True)
    assert body == f'JSON_CALLBACK({{"offset":{len(STDOUT)},"data":""}});'

    resp = client.get("/files/browse", query_string={"path": f"{VIRTUAL}/stdout", "jsonp": "angular.cb._0"})
    body = resp.get_data(as_text=True)
    assert body.startswith("angular.cb._0(") and body.endswith(");")
    assert json.loads(body[len("angular.cb._0(") : -2])[0]["path"] == f"{VIRTUAL}/stdout"


def test_errors_are_not_jsonp_wrapped(client: FlaskClient) -> None:
    resp = client.get("/files/read", query_string={"path": "/etc/passwd", "jsonp": "cb"})
    assert resp.status_code == 403
    assert resp.mimetype == "text/plain"
    assert not resp.get_data(as_text=True).startswith("cb(")
