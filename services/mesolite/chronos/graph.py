"""The dependency graph of jobs, computed from the jobs' ``parents`` lists (pure functions, unit-tested).

Chronos keeps the DAG and per-edge invocation counters in memory and loses the counters on failover (#811). Here
the only graph state is, per dependent job, the set of parents that succeeded since the job was last triggered; the
caller persists it, so a restart never forgets that one of two parents already ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mesolite.chronos.jobs import Job, converted_to_scheduled, is_scheduled


def children(jobs: Mapping[str, Job], name: str) -> list[str]:
    return sorted(child for child, job in jobs.items() if name in (job.get("parents") or []))


def edges(jobs: Mapping[str, Job]) -> list[tuple[str, str]]:
    return [(parent, name) for name in sorted(jobs) for parent in jobs[name].get("parents") or []]


def creates_cycle(jobs: Mapping[str, Job], name: str, parents: Iterable[str]) -> str | None:
    """The parent through which ``name`` would depend on itself, if any (the graph must stay a DAG)."""
    for parent in parents:
        stack, seen = [parent], set()
        while stack:
            current = stack.pop()
            if current == name:
                return parent
            if current in seen:
                continue
            seen.add(current)
            stack.extend((jobs.get(current) or {}).get("parents") or [])
    return None


def record_success(parents: list[str], succeeded: set[str], parent: str) -> tuple[bool, set[str]]:
    """A parent succeeded: is the child now due, and what is its new set of succeeded parents?

    With one parent the child runs after every success; with several it runs once all have succeeded since it was
    last triggered (Chronos' invocation-counter rule, stated as a set). The set is cleared when the child triggers.
    """
    now = (succeeded | {parent}) & set(parents)
    if now >= set(parents):
        return True, set()
    return False, now


def after_delete(jobs: Mapping[str, Job], name: str) -> dict[str, Job]:
    """How the children of a deleted job change (JobManagementResource.delete).

    A deleted dependent job hands its own parents to its children. A deleted scheduled job turns a child whose only
    parent it was into a scheduled job with its schedule; a child with other parents just loses it (Chronos would
    convert that child as well and silently drop its other parents).
    """
    deleted = jobs[name]
    changed: dict[str, Job] = {}
    for child_name in children(jobs, name):
        child = jobs[child_name]
        others = [p for p in child["parents"] if p != name]
        if is_scheduled(deleted):
            if others:
                changed[child_name] = {**child, "parents": others}
            else:
                converted = converted_to_scheduled(child, deleted["schedule"], deleted.get("scheduleTimeZone", ""))
                changed[child_name] = converted
        else:
            inherited = [p for p in deleted.get("parents") or [] if p != child_name and p not in others]
            changed[child_name] = {**child, "parents": others + inherited}
    return changed


def dot(jobs: Mapping[str, Job]) -> str:
    """Graphviz text in the shape JGraphT's DOTExporter printed (integer ids, names as labels)."""
    ids = {name: index for index, name in enumerate(sorted(jobs), start=1)}
    lines = ["digraph G {"]
    lines += [f'  {ids[name]} [ label="{name}" ];' for name in sorted(jobs)]
    lines += [f"  {ids[parent]} -> {ids[child]};" for parent, child in edges(jobs) if parent in ids]
    lines.append("}")
    return "\n".join(lines) + "\n"


def csv(jobs: Mapping[str, Job], last_states: Mapping[str, str], current_states: Mapping[str, str]) -> str:
    """``node,<name>,<lastState>,<currentState>`` per job, then ``link,<parent>,<child>`` per edge."""
    lines = [f"node,{name},{last_states[name]},{current_states[name]}" for name in sorted(jobs)]
    lines += [f"link,{parent},{child}" for parent, child in edges(jobs) if parent in jobs]
    return "".join(line + "\n" for line in lines)
