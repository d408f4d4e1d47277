"""A short run of bench/fuzz.py: hostile lines among valid ones, through ingest (I1, I4).

The long run (100,000 inputs and more) is `python -m bench.fuzz`; its figures
are in docs/benchmarks.md.
"""

from __future__ import annotations

from bench.fuzz import run


def test_hostile_lines_among_valid_ones_leave_every_valid_event_applied_once_in_order_i1_i4():
    seen: list[int] = []

    figures = run(inputs=4000, seed=7, progress=seen.append)

    assert seen[-1] == 4000
    assert figures["valid"] == 4000 + 1
