"""The dependency graph (triggering, deletion, export) and the run statistics."""

from __future__ import annotations

from mesolite.chronos import graph, stats

JOBS = {
    "extract": {"name": "extract", "schedule": "R/2024-01-01T00:00:00Z/P1D", "scheduleTimeZone": "Europe/Paris"},
    "load": {"name": "load", "schedule": "R/2024-01-01T00:00:00Z/P1D", "scheduleTimeZone": ""},
    "transform": {"name": "transform", "parents": ["extract", "load"]},
    "report": {"name": "report", "parents": ["transform"]},
    "audit": {"name": "audit", "parents": ["extract"]},
}


def test_children_and_edges() -> None:
    assert graph.children(JOBS, "extract") == ["audit", "transform"]
    assert ("transform", "report") in graph.edges(JOBS)


def test_a_single_parent_triggers_every_time() -> None:
    assert graph.record_success(["extract"], set(), "extract") == (True, set())


def test_several_parents_trigger_once_all_have_succeeded_since_the_last_run() -> None:
    parents = ["extract", "load"]
    due, seen = graph.record_success(parents, set(), "extract")
    assert not due and seen == {"extract"}
    due, seen = graph.record_success(parents, seen, "extract")  # twice the same parent is still one
    assert not due and seen == {"extract"}
    due, seen = graph.record_success(parents, seen, "load")
    assert due and seen == set()


def test_cycles_are_found() -> None:
    assert graph.creates_cycle(JOBS, "extract", ["report"]) == "report"
    assert graph.creates_cycle(JOBS, "report", ["load"]) is None


def test_deleting_a_dependent_job_hands_its_parents_to_its_children() -> None:
    changed = graph.after_delete(JOBS, "transform")
    assert changed == {"report": {"name": "report", "parents": ["extract", "load"]}}


def test_deleting_a_scheduled_job_converts_an_only_child_and_trims_the_others() -> None:
    changed = graph.after_delete(JOBS, "extract")
    assert changed["audit"] == {
        "name": "audit",
        "schedule": "R/2024-01-01T00:00:00Z/P1D",
        "scheduleTimeZone": "Europe/Paris",
    }
    assert changed["transform"]["parents"] == ["load"]


def test_csv_and_dot() -> None:
    last = dict.fromkeys(JOBS, "fresh")
    current = {**dict.fromkeys(JOBS, "idle"), "load": "1 running"}
    text = graph.csv(JOBS, last, current)
    assert text.splitlines()[:2] == ["node,audit,fresh,idle", "node,extract,fresh,idle"]
    assert "node,load,fresh,1 running" in text.splitlines()
    assert text.splitlines()[5:] == [
        "link,extract,audit",
        "link,transform,report",
        "link,extract,transform",
        "link,load,transform",
    ]
    assert len(text.splitlines()) == 5 + 4
    dot = graph.dot(JOBS)
    assert dot.startswith("digraph G {\n") and '[ label="report" ]' in dot and dot.endswith("}\n")


def test_histogram_of_a_never_run_job_matches_chronos() -> None:
    # chronos-python's itests compare a fresh job's /job/stat to exactly this.
    assert stats.histogram([]) == {
        "75thPercentile": 0.0,
        "95thPercentile": 0.0,
        "98thPercentile": 0.0,
        "99thPercentile": 0.0,
        "median": 0.0,
        "mean": 0.0,
        "count": 0,
    }


def test_percentiles_interpolate_like_codahale() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert stats.quantile(values, 0.5) == 5.5
    assert stats.quantile(values, 0.75) == 8.25
    assert stats.quantile(values, 0.99) == 10.0
    hist = stats.histogram(values)
    assert hist["mean"] == 5.5 and hist["count"] == 10


def test_ranking_is_in_seconds_slowest_first() -> None:
    per_job = {"fast": stats.histogram([1000.0]), "slow": stats.histogram([4000.0]), "new": stats.histogram([])}
    assert stats.ranking(per_job, "median") == [
        {"jobNameLabel": "slow", "time": 4.0},
        {"jobNameLabel": "fast", "time": 1.0},
        {"jobNameLabel": "new", "time": 0.0},
    ]
    assert stats.ranking(per_job, "p42") is None


def test_duration_and_task_stat_format() -> None:
    assert stats.format_duration(5) == "5s"
    assert stats.format_duration(3725) == "1h2m5s"
    assert stats.format_duration(90000) == "1d1h0s"
    entry = stats.task_stat(
        {"taskId": "ct:1:0:a:", "jobName": "a", "slaveId": "S1", "start": 0.0, "end": 65.0, "status": "Success"}
    )
    assert entry == {
        "taskId": "ct:1:0:a:",
        "jobName": "a",
        "slaveId": "S1",
        "startTime": "01/01/70 00:00:00",
        "endTime": "01/01/70 00:01:05",
        "duration": "1m5s",
        "status": "Success",
    }
