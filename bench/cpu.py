"""Where the CPU time of a run goes: seconds per kind of process, from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds) of one process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def children(pids: list[int]) -> list[int]:
    """The processes whose parent is one of `pids`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] in pids:
            found.append(int(entry.name))
    return found


def snapshot(groups: dict[str, list[int]], by_name: tuple[str, ...] = ("postgres",)) -> dict:
    """CPU seconds so far per group of pids, and of the processes with a given name."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))):
            stats[int(entry.name)] = found
    totals = dict.fromkeys([*groups, *by_name], 0.0)
    for group, pids in groups.items():
        for pid, (_, _, seconds) in stats.items():
            if pid in pids:
                totals[group] += seconds
    for name in by_name:
        totals[name] = sum(s for n, _, s in stats.values() if n == name)
    return totals


def spent(before: dict, after: dict) -> dict:
    """CPU seconds per group between two snapshots."""
    return {group: after[group] - before[group] for group in after}
