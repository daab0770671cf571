"""The allocation history behind the master page's chart."""

from __future__ import annotations

import time

from mesolite.core.service_group import ServiceGroup
from mesolite.ui.allocation import AllocationHistory, Sample, chart_series


def test_samples_are_kept_for_the_window_and_taken_on_demand_when_stale() -> None:
    clock = [1000.0]
    taken: list[float] = []

    def measure() -> Sample:
        taken.append(clock[0])
        return Sample(clock[0], 0.5, 0.25, 0.0)

    history = AllocationHistory(measure, interval=10.0, window=60.0)
    assert [s.time for s in history.samples(now=clock[0])] == [1000.0]
    assert [s.time for s in history.samples(now=clock[0] + 5)] == [1000.0], "fresh enough: no new measurement"
    for step in range(1, 10):
        clock[0] = 1000.0 + step * 10
        history.sample()
    recent = history.samples(now=clock[0])
    assert recent[0].time >= clock[0] - 60 and recent[-1].time == clock[0]


def test_no_measurement_leaves_no_point() -> None:
    history = AllocationHistory(lambda: None)
    assert history.samples() == []


def test_background_sampler_starts_and_stops_with_its_service_group() -> None:
    calls: list[float] = []

    def measure() -> Sample:
        calls.append(time.time())
        return Sample(time.time(), 0.1, 0.1, 0.1)

    history = AllocationHistory(measure, interval=0.05)
    group = ServiceGroup(history)
    group.start()
    time.sleep(0.3)
    group.stop()
    count = len(calls)
    assert count >= 3
    time.sleep(0.15)
    assert len(calls) == count, "the sampler stopped"


def test_service_group_stops_everything_even_when_one_fails() -> None:
    order: list[str] = []

    class Member:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def start(self) -> None:
            order.append(f"start {self.name}")

        def stop(self) -> None:
            order.append(f"stop {self.name}")
            if self.fail:
                raise RuntimeError("boom")

    group = ServiceGroup(Member("a"), Member("b", fail=True), Member("c"))
    group.start()
    group.stop()
    assert order == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


def test_chart_coordinates_put_now_on_the_right_and_full_at_the_top() -> None:
    samples = [Sample(0.0, 0.0, 1.0, 0.5), Sample(1800.0, 1.0, 0.0, 2.0)]
    series = chart_series(samples, now=3600.0, width=600, height=100, window=3600.0)
    assert series["cpus"] == ["0.0,100.0", "300.0,0.0"]
    assert series["mem"] == ["0.0,0.0", "300.0,100.0"]
    assert series["disk"][1] == "300.0,0.0", "fractions are clamped to the plot"
