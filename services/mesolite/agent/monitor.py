"""Resource usage of running tasks for ``/monitor/statistics``, read from /proc (and cgroups when they exist).

Each task is a process group (its leader started a new session), so usage is summed over every process of the group:
a shell that started children is measured as a whole.
"""

from __future__ import annotations

import os
import time
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def group_statistics(pgid: int) -> dict[str, Any]:
    processes = threads = 0
    user_ticks = system_ticks = rss_pages = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 22 or int(fields[2]) != pgid:
            continue
        processes += 1
        threads += int(fields[17])
        user_ticks += int(fields[11])
        system_ticks += int(fields[12])
        rss_pages += int(fields[21])
    return {
        "timestamp": time.time(),
        "processes": processes,
        "threads": threads,
        "cpus_user_time_secs": user_ticks / _CLOCK_TICKS,
        "cpus_system_time_secs": system_ticks / _CLOCK_TICKS,
        "mem_rss_bytes": rss_pages * _PAGE_SIZE,
    }
