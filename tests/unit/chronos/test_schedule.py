"""ISO 8601 repeating intervals: parsing and printing as Chronos does, advancing without bursts, and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mesolite.chronos.schedule import (
    INFINITE,
    Period,
    ScheduleError,
    add_period,
    parse_datetime,
    parse_period,
    parse_schedule,
    tick,
)

NY = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


@pytest.mark.parametrize(
    "expression",
    ["R5/2008-03-01T13:00:00Z/P1D", "R/2008-03-01T13:00:00Z/P1D", "R1//P1D", "R1//P", "R/2008-03-01/P1M"],
)
def test_valid_expressions_from_chronos_parser_spec(expression: str) -> None:
    parse_schedule(expression, now=utc(2024, 1, 1))


@pytest.mark.parametrize(
    "expression",
    ["R/2008-03-01T13:00:00Z", "FOO", "R/2008-03-01T13:00:00Z/1D", "R/2008-02-30T00:00:00Z/P1D", "R/x/PT1H"],
)
def test_invalid_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_seed_schedules_parse_naive_micros_as_utc_and_print_like_joda() -> None:
    # The seed talk's UI shows both forms; a start without an offset is UTC, microseconds become milliseconds.
    naive = parse_schedule("R/2013-12-11T00:39:20.277836/PT24H")
    assert naive.start == datetime(2013, 12, 11, 0, 39, 20, 277836, tzinfo=UTC)
    assert str(naive) == "R/2013-12-11T00:39:20.277Z/PT24H"
    assert str(parse_schedule("R/2013-12-10T00:39:20Z/PT24H")) == "R/2013-12-10T00:39:20.000Z/PT24H"
    assert str(parse_schedule("R3/2013-12-10T00:39:20+01:00/P1DT2H")) == "R3/2013-12-10T00:39:20.000+01:00/P1DT2H"


def test_repetitions_empty_start_and_zero_period() -> None:
    now = utc(2024, 5, 1, 12)
    schedule = parse_schedule("R1//P", now=now)
    assert schedule.repeats == 1
    assert schedule.start == now - timedelta(seconds=1)
    assert schedule.period.is_zero
    assert parse_schedule("R/2020-01-01T00:00:00Z/PT1M").repeats == INFINITE


def test_start_before_1970_is_rejected_with_the_date() -> None:
    with pytest.raises(ScheduleError, match="1969-12-31T23:00:00.000Z' is before 1970"):
        parse_schedule("R/1969-12-31T23:00:00Z/P1D")


def test_periods_parse_and_print_in_joda_standard_form() -> None:
    assert parse_period("P1Y2M3W4DT5H6M7.5S") == Period(1, 2, 3, 4, 5, 6, 7, 500000)
    assert str(parse_period("P1Y2M3W4DT5H6M7.5S")) == "P1Y2M3W4DT5H6M7.5S"
    assert str(parse_period("P")) == "PT0S"
    for bad in ("PT", "1D", "P1H", "P-1D"):
        with pytest.raises(ScheduleError):
            parse_period(bad)


def test_datetime_forms() -> None:
    assert parse_datetime("2008-03-01") == utc(2008, 3, 1)
    assert parse_datetime("2008-03-01T13:05") == utc(2008, 3, 1, 13, 5)
    assert parse_datetime("2008-03-01T13:00:00-0800").utcoffset() == timedelta(hours=-8)


# ------------------------------------------------------------------------------------------------- time zones


def test_schedule_time_zone_keeps_wall_clock_fields() -> None:
    schedule = parse_schedule("R/2024-01-15T09:00:00Z/P1D", "America/New_York")
    assert schedule.start == datetime(2024, 1, 15, 9, tzinfo=NY)
    assert schedule.start.astimezone(UTC) == utc(2024, 1, 15, 14)


def test_java_short_zone_ids_resolve_like_java() -> None:
    # Chronos' Iso8601ExpressionParserSpec: BST is Bangladesh (+06:00), not British Summer Time.
    assert parse_schedule("R/2024-07-01T00:00:00Z/P1D", "BST").start.utcoffset() == timedelta(hours=6)
    pst = parse_schedule("R/2024-07-01T00:00:00Z/P1D", "PST").start
    assert pst.utcoffset() == timedelta(hours=-7)  # America/Los_Angeles, in daylight time in July
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        parse_schedule("R/2024-07-01T00:00:00Z/P1D", "Mars/Olympus")


def test_p1d_keeps_local_time_across_spring_forward_but_pt24h_does_not() -> None:
    # 2024-03-10: New York skips from 02:00 EST to 03:00 EDT.
    start = datetime(2024, 3, 9, 9, tzinfo=NY)
    day = add_period(start, parse_period("P1D"))
    assert (day.hour, day.utcoffset()) == (9, timedelta(hours=-4))
    assert day.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    hours = add_period(start, parse_period("PT24H"))
    assert (hours.hour, hours.utcoffset()) == (10, timedelta(hours=-4))
    assert hours.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=24)


def test_p1d_keeps_local_time_across_fall_back() -> None:
    # 2024-11-03: New York repeats 01:00-02:00 and returns to EST.
    start = datetime(2024, 11, 2, 9, tzinfo=NY)
    day = add_period(start, parse_period("P1D"))
    assert (day.hour, day.utcoffset()) == (9, timedelta(hours=-5))
    assert day.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    week = [add_period(start, parse_period("P1D"), n).hour for n in range(7)]
    assert week == [9] * 7


def test_a_daily_job_in_the_skipped_hour_runs_just_after_it() -> None:
    start = datetime(2024, 3, 9, 2, 30, tzinfo=NY)
    moved = add_period(start, parse_period("P1D"))
    assert (moved.hour, moved.minute, moved.utcoffset()) == (3, 30, timedelta(hours=-4))


def test_schedule_printed_in_the_repeated_hour_reads_back_as_the_same_instant() -> None:
    # Hourly in New York through the fall-back: the second 01:30 prints as -05:00 and must not read back as the
    # first 01:30 (-04:00), which would make the job run twice.
    schedule = parse_schedule("R/2024-11-03T00:30:00-04:00/PT1H", "America/New_York")
    after_first = tick(schedule, utc(2024, 11, 3, 5, 31), MINUTE)  # 01:31 EDT, first 01:30 just ran
    assert after_first is not None and after_first.run is not None
    # (compared in UTC: Python never calls a time in a repeated hour equal to one in another zone, PEP 495)
    assert after_first.run.astimezone(UTC) == utc(2024, 11, 3, 5, 30)
    assert str(after_first.schedule) == "R/2024-11-03T01:30:00.000-05:00/PT1H"
    reread = parse_schedule(str(after_first.schedule), "America/New_York")
    assert reread.start.astimezone(UTC) == utc(2024, 11, 3, 6, 30)


def test_hourly_occurrences_cross_dst_as_exact_hours() -> None:
    schedule = parse_schedule("R/2024-03-10T00:00:00Z/PT1H", "America/New_York")
    instants = [schedule.occurrence(n).astimezone(UTC) for n in range(5)]
    assert all(b - a == timedelta(hours=1) for a, b in zip(instants, instants[1:], strict=False))
    assert [schedule.occurrence(n).hour for n in range(5)] == [0, 1, 3, 4, 5]


def test_monthly_schedule_clamps_to_month_end() -> None:
    start = utc(2024, 1, 31, 6)
    assert add_period(start, parse_period("P1M")) == utc(2024, 2, 29, 6)
    assert add_period(start, parse_period("P1M"), 2) == utc(2024, 3, 31, 6)
    assert add_period(utc(2024, 2, 29), parse_period("P1Y")) == utc(2025, 2, 28)


# ---------------------------------------------------------------------------------------------- advancing


def test_a_future_start_is_not_moved() -> None:
    schedule = parse_schedule("R/2030-01-01T00:00:00Z/P1D")
    assert tick(schedule, utc(2029, 12, 31), MINUTE) is None


def test_a_due_run_launches_once_and_the_schedule_moves_past_now() -> None:
    schedule = parse_schedule("R/2024-01-01T00:00:00Z/PT1H")
    now = utc(2024, 1, 1, 0, 0, 30)
    result = tick(schedule, now, MINUTE)
    assert result is not None
    assert result.run == utc(2024, 1, 1)
    assert result.skipped == 0
    assert str(result.schedule) == "R/2024-01-01T01:00:00.000Z/PT1H"
    assert tick(result.schedule, now, MINUTE) is None


def test_missed_runs_beyond_epsilon_are_skipped_not_replayed() -> None:
    # Chronos' JobUtilsSpec: R/2012-01-01T00:00:01Z/PT1M moves to today. Thousands of missed slots, no run.
    schedule = parse_schedule("R/2012-01-01T00:00:01Z/PT1M")
    now = utc(2024, 6, 1, 12, 0, 30)
    result = tick(schedule, now, timedelta(seconds=10))
    assert result is not None and result.run is None
    assert result.schedule.start == utc(2024, 6, 1, 12, 1, 1)
    assert result.skipped > 6_000_000


def test_the_latest_missed_slot_runs_if_within_epsilon() -> None:
    schedule = parse_schedule("R/2024-01-01T00:00:00Z/PT1M")
    result = tick(schedule, utc(2024, 1, 1, 0, 10, 20), timedelta(seconds=30))
    assert result is not None
    assert result.run == utc(2024, 1, 1, 0, 10)
    assert result.skipped == 10
    assert result.schedule.start == utc(2024, 1, 1, 0, 11)


def test_monthly_schedule_from_the_past_moves_to_a_future_first_of_month() -> None:
    result = tick(parse_schedule("R/2012-01-01/P1M"), utc(2024, 6, 15, 8), MINUTE)
    assert result is not None and result.run is None
    assert result.schedule.start == utc(2024, 7, 1)


def test_finite_repetitions_count_every_slot_and_reach_zero() -> None:
    schedule = parse_schedule("R3/2024-01-01T00:00:00Z/P1D")
    first = tick(schedule, utc(2024, 1, 1, 0, 0, 5), MINUTE)
    assert first is not None and first.run == utc(2024, 1, 1) and first.schedule.repeats == 2
    # Two days later: one slot skipped (too old), one just due.
    second = tick(first.schedule, utc(2024, 1, 3, 0, 0, 5), MINUTE)
    assert second is not None and second.run == utc(2024, 1, 3) and second.skipped == 1
    assert second.schedule.exhausted
    assert tick(second.schedule, utc(2030, 1, 1), MINUTE) is None


def test_repetitions_are_not_exceeded_when_far_behind() -> None:
    schedule = parse_schedule("R2/2024-01-01T00:00:00Z/PT1M")
    result = tick(schedule, utc(2024, 1, 1, 1), timedelta(hours=2))
    assert result is not None
    assert result.run == utc(2024, 1, 1, 0, 1)  # the last of its two slots, not the slot at 01:00
    assert result.schedule.exhausted


def test_zero_period_runs_once() -> None:
    now = utc(2024, 1, 1, 12)
    schedule = parse_schedule("R//PT0S", now=now)
    result = tick(schedule, now, MINUTE)
    assert result is not None and result.run is not None
    assert result.schedule.exhausted


def test_one_shot_daily_job_created_a_day_late_is_skipped_and_done() -> None:
    # Chronos' JobUtilsSpec: R1/<now - 1 day>/PT0S → R0.
    now = utc(2024, 1, 2)
    result = tick(parse_schedule("R1/2024-01-01T00:00:00Z/PT0S"), now, MINUTE)
    assert result is not None and result.run is None and result.schedule.exhausted


def test_daily_local_schedule_advances_across_dst_without_extra_runs() -> None:
    schedule = parse_schedule("R/2024-03-08T09:00:00/P1D", "America/New_York")
    runs = []
    moment = utc(2024, 3, 8, 14, 0, 1)  # 09:00:01 EST
    for _ in range(4):
        result = tick(schedule, moment, MINUTE)
        assert result is not None and result.run is not None
        runs.append(result.run.astimezone(NY).strftime("%m-%d %H:%M %z"))
        schedule = result.schedule
        moment = schedule.start.astimezone(UTC) + timedelta(seconds=1)
    assert runs == ["03-08 09:00 -0500", "03-09 09:00 -0500", "03-10 09:00 -0400", "03-11 09:00 -0400"]


def test_fixed_offset_zone_id() -> None:
    start = parse_schedule("R/2024-01-01T10:00:00Z/P1D", "+02:00").start
    assert start.utcoffset() == timedelta(hours=2)
    assert start.tzinfo == timezone(timedelta(hours=2))
