"""The HTTP fuzz in the suite: hypothesis-made requests over every route and parameter
against `ctilink web`, on SQLite and PostgreSQL (bench/http_fuzz.py sends 100,000)."""

from __future__ import annotations

from bench.http_fuzz import console, example_store, fuzz

REQUESTS = 3_000


def test_no_request_over_any_route_or_parameter_gets_a_5xx_or_a_traceback(new_store):
    store = str(new_store())
    example_store(store)
    with console(store) as (_, host, port, log):
        tally = fuzz(host, port, REQUESTS)
        assert "Traceback" not in log.read_text(errors="replace")
        assert log.stat().st_size < 100_000
    assert tally.failures == []
    assert tally.sent == REQUESTS
    assert not any(status >= 500 for status in tally.statuses)
    # The fuzz reached the pages, and was refused as it should be.
    for status in (200, 303, 307, 400, 401, 404):
        assert tally.statuses[status] > 0, tally.statuses
