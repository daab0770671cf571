"""Display filters and the in-process API client shared by the three UIs."""

from __future__ import annotations

from flask import Flask, request

from mesolite.ui.common import LocalApi, ago, filesize, isotime, megabytes, number, to_epoch


def test_times_from_epoch_seconds_and_iso_strings_agree() -> None:
    assert to_epoch(1700000000) == 1700000000.0
    assert to_epoch("2023-11-14T22:13:20.000Z") == 1700000000.0
    assert to_epoch("2023-11-14T22:13:20") == 1700000000.0
    assert to_epoch("") is None and to_epoch(None) is None and to_epoch(0) is None and to_epoch("soon") is None
    assert isotime(1700000000) == "2023-11-14T22:13:20Z"


def test_relative_times() -> None:
    now = 1_000_000.0
    assert ago(now - 3, now) == "just now"
    assert ago(now - 61, now) == "1 minute ago"
    assert ago(now - 7200, now) == "2 hours ago"
    assert ago(now - 3 * 86400, now) == "3 days ago"
    assert ago(now + 120, now) == "in 2 minutes"
    assert ago(None, now) == ""


def test_sizes_and_numbers_as_the_mesos_ui_shows_them() -> None:
    assert megabytes(0) == "0 B"
    assert megabytes(512) == "512 MB"
    assert megabytes(1331.2) == "1.3 GB"
    assert megabytes(8192) == "8 GB"
    assert megabytes(0.5) == "512 KB"
    assert number(1.6) == "1.6" and number(4.0) == "4" and number(0.1 + 0.2) == "0.3" and number(None) == "0"
    assert filesize(10) == "10 B" and filesize(3 * 1024 * 1024) == "3 MB"


def test_local_api_calls_the_apps_own_routes_with_json() -> None:
    app = Flask("t")

    @app.post("/echo")
    def echo() -> dict:
        return {"got": request.get_json(), "q": request.args.get("q"), "accept": request.headers.get("Accept")}

    result = LocalApi(app).call("POST", "/echo", body={"a": 1}, query={"q": "x"})
    assert result.ok and result.status == 200
    assert result.json() == {"got": {"a": 1}, "q": "x", "accept": "application/json"}
    missing = LocalApi(app).get("/nowhere")
    assert missing.status == 404 and not missing.ok
