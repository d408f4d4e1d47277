"""`ctilink.api.networks` over a real nats-server: pages in name order, filters, and bounds.

Every answer must fit in one NATS message: a page that would not is cut short,
and the asker goes on after its last name (`ctilink networks --nats` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import nats
import pytest

from ctilink.adapters.nats.embedded import EmbeddedNats
from ctilink.adapters.store.queries.listing import network_lines
from ctilink.adapters.store.queries.networks import Filters
from ctilink.adapters.store.selection import open_service
from tests.e2e.conftest import ROOT, Service
from tests.support import decode, ev, installed

LONG = "n" * 56  # names of 60 characters: a full page is far over 64 KiB
COUNT = 1_200


@pytest.fixture
def many(tmp_path: Path, small_payload_server: EmbeddedNats):  # type: ignore[no-untyped-def]
    """A store of 1,200 networks (every fifth with a restart pending), served."""
    store = tmp_path / "ctilink.db"
    events = []
    for n in range(COUNT):
        name = f"{LONG}{n:04d}"
        events.append(installed(network=name))
        if n % 5 == 0:
            events.append(ev("central_cti_link_set", network=name, enabled=False))
    with closing(open_service(str(store))) as service:
        service.ingest([decode(e) for e in events])
        expected = [
            {"network": line.network, "position": line.position, "effective": line.effective}
            for line in network_lines(service, Filters())[0]
        ]
    served = Service(store, small_payload_server.url, tmp_path / "serve.log")
    served.start()
    yield served, expected
    assert served.stop() == 0


async def ask(url: str, query: dict) -> tuple[list | None, dict]:  # type: ignore[type-arg]
    """(answer, headers) of one request."""
    nc = await nats.connect(url)
    try:
        reply = await nc.request("ctilink.api.networks", json.dumps(query).encode(), timeout=10)
    finally:
        await nc.close()
    headers = reply.headers or {}
    return (None if "Nats-Service-Error-Code" in headers else json.loads(reply.data)), headers


async def test_a_page_too_large_for_nats_is_cut_short_and_the_next_goes_on_after_it(many):
    served, expected = many

    first, _ = await ask(served.url, {"limit": 10_000})
    assert first is not None and 0 < len(first) < COUNT
    assert len(json.dumps(first, separators=(",", ":"))) < 65_536
    assert first == expected[: len(first)]
    second, _ = await ask(served.url, {"after": first[-1]["network"], "limit": 10_000})
    assert second == expected[len(first) : len(first) + len(second)]

    default, _ = await ask(served.url, {})  # 1,000 by default, cut the same way
    assert default == first


async def test_the_filters_and_a_small_limit_over_nats(many):
    served, expected = many
    pending = [n for n in expected if int(n["network"][-4:]) % 5 == 0]

    page, _ = await ask(served.url, {"restart_pending": True, "limit": 7})
    assert page == pending[:7]
    page, _ = await ask(served.url, {"name_prefix": f"{LONG}011", "effective": "central"})
    assert [n["network"][-4:] for n in page] == [f"011{d}" for d in range(10)]
    page, _ = await ask(served.url, {"effective": "manual"})
    assert page == []
    page, _ = await ask(served.url, {"after": expected[-1]["network"]})
    assert page == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"after": "a b"}, "after"),
        ({"after": ""}, "after"),
        ({"effective": "centrall"}, "effective"),
        ({"restart_pending": "yes"}, "restart_pending"),
        ({"name_prefix": "x" * 65}, "name_prefix"),
        ({"page": 2}, "page"),
    ],
)
async def test_a_bad_query_is_a_400_naming_the_field(many, query, field):
    served, _ = many

    answer, headers = await ask(served.url, query)

    assert answer is None and headers["Nats-Service-Error-Code"] == "400"
    assert f"`$.{field}`" in headers["Nats-Service-Error"] or field in headers["Nats-Service-Error"]
    page, _ = await ask(served.url, {"limit": 1})  # and the service answers on
    assert page is not None and len(page) == 1


def test_networks_over_nats_pages_through_every_network_as_the_store_lists_them(many):
    served, expected = many

    done = subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", "networks", "--json", "--nats", served.url],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    filtered = subprocess.run(
        [
            *(sys.executable, "-m", "ctilink.adapters.cli", "networks", "--json"),
            *("--nats", served.url, "--restart-pending"),
        ],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert len(json.loads(filtered.stdout)) == COUNT // 5
