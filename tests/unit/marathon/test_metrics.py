"""Marathon's metric names and the Prometheus text its PrometheusReporter writes."""

from __future__ import annotations

import re

from mesolite.marathon import metrics


def test_names_carry_marathons_type_and_unit_suffixes() -> None:
    http = metrics.HttpMetrics()
    http.started(10)
    http.answered("GET", 200, 99, 0.25)
    http.finished()
    data = metrics.snapshot({"apps.active": 2, "uptime.seconds": 1.5}, {"tasks.launched": 3}, http)
    assert data["gauges"]["marathon.apps.active.gauge"] == {"value": 2}
    assert data["gauges"]["marathon.uptime.gauge.seconds"] == {"value": 1.5}
    assert data["counters"]["marathon.tasks.launched.counter"] == {"count": 3}
    assert data["counters"]["marathon.http.requests.size.counter.bytes"] == {"count": 10}
    assert data["counters"]["marathon.http.responses.size.counter.bytes"] == {"count": 99}
    meter = data["meters"]["marathon.http.responses.2xx.rate.meter"]
    assert meter["count"] == 1 and meter["units"] == "events/second" and meter["mean_rate"] > 0
    timer = data["timers"]["marathon.http.requests.get.duration.timer.seconds"]
    assert timer["count"] == 1 and timer["p99"] == timer["max"] == 0.25 and timer["duration_units"] == "seconds"


def test_prometheus_text_has_help_types_and_sanitized_names() -> None:
    http = metrics.HttpMetrics()
    for seconds in (0.1, 0.2, 0.3):
        http.answered("POST", 201, 5, seconds)
    text = metrics.prometheus(metrics.snapshot({"instances.launch-overdue": 0}, {"deployments": 4}, http))
    assert "# TYPE marathon_instances_launch_overdue_gauge gauge\nmarathon_instances_launch_overdue_gauge 0\n" in text
    assert "# TYPE marathon_deployments_counter counter\nmarathon_deployments_counter 4\n" in text
    assert 'marathon_http_requests_post_duration_timer_seconds{quantile="0.5"} 0.2' in text
    assert "marathon_http_requests_post_duration_timer_seconds_count 3" in text
    assert "marathon_http_responses_2xx_rate_meter_count 3" in text
    assert re.search(r"^marathon_http_responses_2xx_rate_meter_m1_rate [0-9.e-]+$", text, re.M)
    families = re.findall(r"^# TYPE (\S+) ", text, re.M)
    helped = re.findall(r"^# HELP (\S+) ", text, re.M)
    assert families == helped and len(families) == len(set(families))
    names = re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? \S+$", text, re.M)
    assert all(re.fullmatch(r"[a-zA-Z0-9_]+", n) for n in names) and len(names) > 40


def test_meters_decay_like_dropwizards() -> None:
    meter = metrics.Meter()
    meter.mark(50)
    meter._last_tick -= metrics.TICK  # five seconds later
    assert meter.json()["m1_rate"] == 10.0  # the first tick takes the instant rate
    meter._last_tick -= metrics.TICK
    assert 0 < meter.json()["m1_rate"] < 10.0
