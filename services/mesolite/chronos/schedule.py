"""ISO 8601 repeating intervals (``R[n]/start/period``) as Chronos reads, advances and prints them.

Pure functions of their inputs (``now`` is always passed in), so the arithmetic, including daylight-saving changes,
is unit-tested without a clock or a server.

Semantics kept from Chronos (Joda-Time underneath):

- ``R`` alone repeats forever, ``Rn`` n times; an empty start means "now minus one second"; ``P`` with no fields is a
  zero period; a start without an offset is UTC (Chronos servers run with a UTC JVM zone).
- ``scheduleTimeZone`` overrides the offset written in the start but keeps its wall-clock fields.
- A period's date fields (years, months, weeks, days) move the wall clock in the schedule's zone, so ``P1D`` stays at
  the same local hour across a DST change; its time fields (hours, minutes, seconds) are exact durations, so
  ``PT24H`` drifts by an hour across one. This is Joda's ``DateTime.plus(Period)`` and the source of the classic
  "``PT24H`` vs ``P1D``" surprise, which users need to be able to rely on either way.
- Printing uses Joda's ``dateTime`` format (``2013-12-11T00:39:20.277Z``, millisecond precision, ``Z`` for a zero
  offset), because clients read rewritten schedules back.

What differs on purpose: a missed occurrence older than the job's ``epsilon`` is skipped (Chronos 2.x) instead of
launched late, and every occurrence that passes counts against ``Rn`` whether it ran or was skipped, so ``R5`` means
five slots in time. Several missed slots never turn into a burst of runs.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

INFINITE = -1

_EXPRESSION = re.compile(r"^(R[0-9]*)/(.*)/(P.*)$")
_PERIOD = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:[.,](\d{1,9}))?S)?)?$"
)
_DATETIME = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
# Java's three-letter zone ids that are not IANA names (java.time.ZoneId.SHORT_IDS); the IANA database has EST,
# MST and HST itself. BST is Bangladesh, as in Java — not British Summer Time.
_JAVA_SHORT_IDS = {
    "ACT": "Australia/Darwin",
    "AET": "Australia/Sydney",
    "AGT": "America/Argentina/Buenos_Aires",
    "ART": "Africa/Cairo",
    "AST": "America/Anchorage",
    "BET": "America/Sao_Paulo",
    "BST": "Asia/Dhaka",
    "CAT": "Africa/Harare",
    "CNT": "America/St_Johns",
    "CST": "America/Chicago",
    "CTT": "Asia/Shanghai",
    "EAT": "Africa/Addis_Ababa",
    "ECT": "Europe/Paris",
    "IET": "America/Indiana/Indianapolis",
    "IST": "Asia/Kolkata",
    "JST": "Asia/Tokyo",
    "MIT": "Pacific/Apia",
    "NET": "Asia/Yerevan",
    "NST": "Pacific/Auckland",
    "PLT": "Asia/Karachi",
    "PNT": "America/Phoenix",
    "PRT": "America/Puerto_Rico",
    "PST": "America/Los_Angeles",
    "SST": "Pacific/Guadalcanal",
    "VST": "Asia/Ho_Chi_Minh",
}
_EPOCH_FLOOR = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


class ScheduleError(ValueError):
    """An expression, period, datetime or zone that cannot be read; the message names the offending part."""


@dataclass(frozen=True)
class Period:
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0
    micros: int = 0

    @property
    def is_zero(self) -> bool:
        return not any((self.years, self.months, self.weeks, self.days, self.hours, self.minutes, self.seconds,
                        self.micros))  # fmt: skip

    @property
    def nominal_seconds(self) -> float:
        """A rough length, only to estimate how many periods fit in a span before exact stepping."""
        days = self.years * 365.2425 + self.months * 30.436875 + self.weeks * 7 + self.days
        return days * 86400 + self.hours * 3600 + self.minutes * 60 + self.seconds + self.micros / 1e6

    def exact(self) -> timedelta:
        return timedelta(hours=self.hours, minutes=self.minutes, seconds=self.seconds, microseconds=self.micros)

    def __str__(self) -> str:
        """Joda's ISOPeriodFormat.standard(): zero fields left out, a zero period is ``PT0S``."""
        if self.is_zero:
            return "PT0S"
        date = "".join(f"{v}{u}" for v, u in ((self.years, "Y"), (self.months, "M"), (self.weeks, "W"),
                                                (self.days, "D")) if v)  # fmt: skip
        time = "".join(f"{v}{u}" for v, u in ((self.hours, "H"), (self.minutes, "M")) if v)
        if self.seconds or self.micros:
            fraction = f"{self.micros:06d}".rstrip("0")
            time += f"{self.seconds}.{fraction}S" if fraction else f"{self.seconds}S"
        return f"P{date}" + (f"T{time}" if time else "")


def parse_period(text: str) -> Period:
    match = _PERIOD.match(text)
    if not match:
        raise ScheduleError(f"invalid period '{text}' (expected e.g. PT1H, P1D, P1M, PT30S)")
    y, mo, w, d, h, mi, s, frac = match.groups()
    micros = int((frac or "0").ljust(9, "0")[:6])
    years, months, weeks, days, hours, minutes, seconds = (int(v or 0) for v in (y, mo, w, d, h, mi, s))
    return Period(years, months, weeks, days, hours, minutes, seconds, micros=micros)


def parse_zone(name: str) -> tzinfo:
    """An IANA zone (``Europe/Paris``), Java's short ids (``PST``), ``UTC``/``GMT`` or a fixed ``+01:00``."""
    if name in ("UTC", "GMT", "Z"):
        return UTC
    fixed = re.match(r"^(?:GMT|UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$", name)
    if fixed:
        sign = -1 if fixed.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(fixed.group(2)), minutes=int(fixed.group(3) or 0)))
    try:
        return ZoneInfo(_JAVA_SHORT_IDS.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone '{name}'") from None


def parse_datetime(text: str) -> datetime:
    """Joda's ISO parser for the forms people write: a date alone, a date and time, any fraction, an offset."""
    match = _DATETIME.match(text)
    if not match:
        try:
            parsed = datetime.fromisoformat(text)  # week dates and other rarer ISO forms
        except ValueError:
            raise ScheduleError(f"invalid start '{text}'") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    year, month, day, hour, minute, second, frac, offset = match.groups()
    micros = int((frac or "0").ljust(9, "0")[:6])
    try:
        naive = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                         int(second or 0), micros)  # fmt: skip
    except ValueError as exc:
        raise ScheduleError(f"invalid start '{text}': {exc}") from None
    zone: tzinfo = UTC
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        zone = UTC if not delta else timezone(sign * delta)
    return naive.replace(tzinfo=zone)


def in_zone(moment: datetime, zone: tzinfo) -> datetime:
    """Keep the wall-clock fields of ``moment`` in ``zone`` (Joda's withZoneRetainFields).

    When the wall time is ambiguous (the repeated hour at the end of DST) the occurrence whose offset matches the one
    written in ``moment`` wins, so a schedule printed as ``01:30-05:00`` reads back as the second 01:30, not the
    first (which would run the job twice).
    """
    naive = moment.replace(tzinfo=None)
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset() and second.utcoffset() == moment.utcoffset():
        return _normalise(second)
    return _normalise(first)


def _normalise(moment: datetime) -> datetime:
    """Resolve a wall time that falls in a DST gap forward, as Joda does (02:30 on a spring-forward day is 03:30)."""
    zone = moment.tzinfo
    assert zone is not None
    return moment.astimezone(UTC).astimezone(zone)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def add_period(moment: datetime, period: Period, times: int = 1) -> datetime:
    """``moment + times × period`` with Joda's field semantics (see the module docstring)."""
    zone = moment.tzinfo
    assert zone is not None, "schedule datetimes are always aware"
    wall = moment.replace(tzinfo=None)
    local = wall
    if period.years:
        local = _add_months(local, 12 * period.years * times)
    if period.months:
        local = _add_months(local, period.months * times)
    if period.weeks or period.days:
        local = local + timedelta(days=(7 * period.weeks + period.days) * times)
    # A new wall time in a repeated hour takes the earlier offset, one in a skipped hour moves forward (Joda).
    shifted = moment if local == wall else _normalise(local.replace(tzinfo=zone, fold=0))
    exact = period.exact()
    if exact:
        shifted = (shifted.astimezone(UTC) + exact * times).astimezone(zone)
    return shifted


def format_datetime(moment: datetime) -> str:
    """Joda's ISODateTimeFormat.dateTime(): ``yyyy-MM-dd'T'HH:mm:ss.SSS`` and ``Z`` or ``±HH:mm``."""
    text = moment.isoformat(timespec="milliseconds")
    offset = moment.utcoffset()
    if offset is not None and not offset:
        text = text[: -len("+00:00")] + "Z"
    return text


@dataclass(frozen=True)
class Schedule:
    repeats: int  # INFINITE or the number of occurrences left
    start: datetime  # aware, in the schedule's zone
    period: Period

    def __str__(self) -> str:
        count = "R" if self.repeats == INFINITE else f"R{self.repeats}"
        return f"{count}/{format_datetime(self.start)}/{self.period}"

    @property
    def exhausted(self) -> bool:
        return self.repeats == 0

    def occurrence(self, index: int) -> datetime:
        return add_period(self.start, self.period, index) if index else self.start


def parse_schedule(expression: str, time_zone: str = "", now: datetime | None = None) -> Schedule:
    """Read ``R[n]/start/period``; an empty start is ``now − 1 s`` (Chronos' "run now")."""
    if not isinstance(expression, str):
        raise ScheduleError("schedule must be a string")
    match = _EXPRESSION.match(expression.strip())
    if not match:
        raise ScheduleError(f"Cannot parse schedule '{expression}' (expected R[n]/<start>/<period>)")
    repeat_text, start_text, period_text = match.groups()
    repeats = INFINITE if repeat_text == "R" else int(repeat_text[1:])
    period = parse_period(period_text)
    if start_text:
        start = parse_datetime(start_text)
        if time_zone:
            start = in_zone(start, parse_zone(time_zone))
    else:
        start = (now or datetime.now(UTC)) - timedelta(seconds=1)
        if time_zone:
            start = start.astimezone(parse_zone(time_zone))
    if start < _EPOCH_FLOOR:
        raise ScheduleError(f"Scheduled start date '{format_datetime(start)}' is before 1970!")
    return Schedule(repeats, start, period)


@dataclass(frozen=True)
class Tick:
    """What passing time did to a schedule: at most one run, how many slots were skipped, and the advanced schedule."""

    run: datetime | None  # the occurrence to launch now, if the latest passed one is within epsilon
    skipped: int
    schedule: Schedule


def tick(schedule: Schedule, now: datetime, epsilon: timedelta) -> Tick | None:
    """Advance past ``now``; ``None`` when no occurrence has passed (a future start, or nothing left to run).

    Only the latest passed occurrence can run, and only if it is at most ``epsilon`` old; the schedule moves to the
    first occurrence strictly after ``now``. A zero period has a single occurrence (repeating it would be a busy
    loop), so afterwards an infinite one is exhausted too.
    """
    if schedule.exhausted or schedule.start > now:
        return None
    if schedule.period.is_zero:
        passed = 1
    else:
        passed = _first_after(schedule, now)
    if schedule.repeats != INFINITE:
        passed = min(passed, schedule.repeats)
    last = schedule.occurrence(passed - 1)
    run = last if now - last <= epsilon else None
    if schedule.period.is_zero:
        advanced = replace(schedule, repeats=0)
    else:
        remaining = INFINITE if schedule.repeats == INFINITE else schedule.repeats - passed
        advanced = Schedule(remaining, schedule.occurrence(passed), schedule.period)
    return Tick(run=run, skipped=passed - (1 if run else 0), schedule=advanced)


def _first_after(schedule: Schedule, now: datetime) -> int:
    """The index of the first occurrence strictly after ``now`` (≥ 1, as occurrence 0 has passed)."""
    span = (now - schedule.start).total_seconds()
    index = max(1, math.floor(span / schedule.period.nominal_seconds) + 1)
    while index > 1 and schedule.occurrence(index - 1) > now:
        index -= 1
    while schedule.occurrence(index) <= now:
        index += 1
    return index


def next_wakeup(schedule: Schedule) -> datetime | None:
    return None if schedule.exhausted else schedule.start
