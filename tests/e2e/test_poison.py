"""No message stops the flow: poison over NATS is rejected once, and everything else goes on.

Each test sends valid events around the poison, to the same partition, and
checks that every valid one is applied exactly once and in order, that each
poison message gets exactly one rejection, and that the service keeps serving.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Service, stream_messages, wait_for
from tests.e2e.traffic import event_ids, publisher_caught_up


def event(network: str, n: int, **fields: object) -> bytes:
    """A valid event of `network` (its install when n == 0)."""
    if n == 0:
        body = {"type": "portal_installed", "platform": "windows"}
    else:
        body = {"type": "portal_restarted"}
    return json.dumps({**body, "id": f"{network}-{n}", "network": network, **fields}).encode()


async def rejections(nc) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    """Every rejection in CTILINK_OUT: (subject, message)."""
    found = await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")
    return [(m.subject, json.loads(m.data)) for m in found]


async def settle(nc, service: Service, out: int) -> None:  # type: ignore[no-untyped-def]
    """Wait until CTILINK_IN is empty, `out` events are out and nothing is left to publish."""

    async def done() -> bool:
        info = await nc.jetstream().stream_info("CTILINK_IN")
        events = sum((await event_ids(nc)).values())
        return info.state.messages == 0 and events >= out and publisher_caught_up(service.store)

    await wait_for(done, timeout=60, every=0.2)


POISON = [
    b'{"type":"portal_restarted","id":"\xff","network":"acme"}',  # bad UTF-8 in a string
    b'{"type":"portal_restarted","id":"late","network":"acme","at":"9999-12-31T23:59:59-01:00"}',
    b'{"type":"portal_restarted","id":"early","network":"acme","at":"0001-01-01T00:00:00+01:00"}',
    b'{"type":"portal_restarted","id":"d","id":"e","network":"acme"}',
    b"\xef\xbb\xbf" + event("acme", 9),
    b'{"id":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b"",
    b"\x00\x01\x02",
]


async def test_poison_messages_are_each_rejected_once_and_the_partition_goes_on_i1(nc, service):
    js = nc.jetstream()
    sent = [event("acme", 0)]
    for n, poison in enumerate(POISON, 1):
        sent += [poison, event("acme", n)]
    for data in sent:
        await js.publish("ctilink.in.acme", data)

    await settle(nc, service, len(POISON) + 1)

    assert sorted(await event_ids(nc)) == sorted(f"acme:{p}" for p in range(1, len(POISON) + 2))
    rejected = await rejections(nc)
    assert [subject for subject, _ in rejected] == ["ctilink.rejected.acme"] * len(POISON)
    assert {r["code"] for _, r in rejected} == {"invalid"}
    assert all(r["message"] for _, r in rejected)
    reply = await nc.request("ctilink.api.status", b'{"network":"acme"}', timeout=5)
    assert json.loads(reply.data)["position"] == len(POISON) + 1  # still serving


async def test_a_network_named_rejected_is_published_whole_its_ids_never_meet_a_rejection_s8(
    nc, service
):
    js = nc.jetstream()
    for data in [event("rejected", 0), b"garbage", event("rejected", 1), event("rejected", 2)]:
        await js.publish("ctilink.in.rejected", data)

    await settle(nc, service, 3)

    assert sorted(await event_ids(nc)) == ["rejected:1", "rejected:2", "rejected:3"]
    assert [s for s, _ in await rejections(nc)] == ["ctilink.rejected.rejected"]


async def test_queries_with_bad_bytes_are_400_not_500(nc, service):
    bad_text = await nc.request("ctilink.api.status", b'{"network":"\xff"}', timeout=5)
    deep = await nc.request("ctilink.api.status", b"[" * 5000, timeout=5)
    ingest = await nc.request(
        "ctilink.api.ingest", b'{"type":"portal_restarted","id":"\xff\xfe","network":"a"}'
    )
    late = await nc.request(
        "ctilink.api.ingest",
        b'{"type":"portal_restarted","id":"x","network":"a","at":"9999-12-31T23:59:59-01:00"}',
    )

    assert bad_text.headers["Nats-Service-Error-Code"] == "400"
    assert deep.headers["Nats-Service-Error-Code"] == "400"
    assert (json.loads(ingest.data)["outcome"], json.loads(ingest.data)["code"]) == (
        "rejected",
        "invalid",
    )
    assert json.loads(late.data)["code"] == "invalid"


async def test_a_message_too_large_for_the_server_goes_out_as_a_notice_and_publishing_goes_on(
    small_payload_server, tmp_path
):
    import nats

    store = tmp_path / "ctilink.db"
    big = json.dumps(
        {
            "type": "directory_changed",
            "id": "big",
            "network": "acme",
            "system": "s1",
            "entries": [{"name": f"Person {n}", "number": str(n)} for n in range(4000)],
        }
    ).encode()
    lines = [
        event("acme", 0, platform="linux_server_edition"),
        json.dumps(
            {
                "type": "system_added",
                "id": "s",
                "network": "acme",
                "system": "s1",
                "role": "primary",
                "platform": "linux",
                "address": "10.0.0.1",
            }
        ).encode(),
        json.dumps(  # s1's directory link is up: its directory is served (§7)
            {
                "type": "link_changed",
                "id": "l",
                "network": "acme",
                "system": "s1",
                "component": "dsml",
                "up": True,
            }
        ).encode(),
        big,
        event("acme", 3),
    ]
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    from ctilink.adapters.cli.main import main

    assert main(["ingest", str(tmp_path / "events.jsonl"), "--store", str(store)]) == 0
    service = Service(store, small_payload_server.url, tmp_path / "serve.log")
    service.start()
    nc = await nats.connect(small_payload_server.url)
    try:
        await settle(nc, service, 5)
        out = await stream_messages(nc, "CTILINK_OUT", "ctilink.events.>")
        by_id = {m.headers["Nats-Msg-Id"]: json.loads(m.data) for m in out}
        assert by_id["acme:4"] == {
            "omitted": "acme:4",
            "size": by_id["acme:4"]["size"],
            "max_payload": 65536,
        }
        assert by_id["acme:5"]["event"]["id"] == "acme-3"  # the next one as usual
        assert "too large for NATS" in service.log.read_text()
        # A query whose answer NATS cannot carry says so, and the service goes on.
        too_big = await nc.request("ctilink.api.directory", b'{"network":"acme"}', timeout=5)
        assert too_big.headers["Nats-Service-Error-Code"] == "413"
        assert "max_payload" in too_big.headers["Nats-Service-Error"]
        fine = await nc.request("ctilink.api.status", b'{"network":"acme"}', timeout=5)
        assert json.loads(fine.data)["position"] == 5
    finally:
        await nc.close()
        assert service.stop() == 0


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=6))
async def test_fuzzed_messages_between_valid_ones_leave_every_valid_one_applied_once_i1(
    nc, service, junk
):
    # One network per example; the service runs throughout (it is never restarted).
    network = f"f{abs(hash(tuple(junk))) % 10**9}"
    js = nc.jetstream()
    before = sum((await event_ids(nc)).values())
    sent = [event(network, 0)]
    for n, data in enumerate(junk, 1):
        sent += [data, event(network, n)]
    for data in sent:
        await js.publish(f"ctilink.in.{network}", data)

    await settle(nc, service, before + len(junk) + 1)

    mine = Counter(i for i in await event_ids(nc) if i.startswith(f"{network}:"))
    assert sorted(mine) == sorted(f"{network}:{p}" for p in range(1, len(junk) + 2))


@FUZZ
@given(
    st.sampled_from(["status", "directory", "networks", "ingest"]),
    st.binary(max_size=200)
    | st.builds(
        lambda v: json.dumps(v).encode(),
        st.dictionaries(
            st.sampled_from(["network", "at", "id", "type", "x"]),
            st.none() | st.integers() | st.text(max_size=70) | st.booleans(),
            max_size=4,
        ),
    ),
)
async def test_any_request_to_any_endpoint_is_answered_never_with_500(nc, service, endpoint, data):
    reply = await nc.request(f"ctilink.api.{endpoint}", data, timeout=10)

    code = (reply.headers or {}).get("Nats-Service-Error-Code")
    assert code in (None, "400", "404"), (code, (reply.headers or {}).get("Nats-Service-Error"))
    if code is None:
        json.loads(reply.data)  # an answer is JSON


async def test_messages_sent_to_a_literal_wildcard_subject_are_rejected_and_leave_the_stream(
    nc, service
):
    js = nc.jetstream()
    await js.publish("ctilink.in.*", event("stray", 0))
    await js.publish("ctilink.in.>", b"not even json")
    await js.publish("ctilink.in.acme", event("acme", 0))

    async def swept() -> bool:
        info = await js.stream_info("CTILINK_IN")
        return info.state.messages == 0

    await wait_for(swept, timeout=30, every=0.3)
    await settle(nc, service, 1)
    rejected = await rejections(nc)
    # The other names no network: published all the same, under `~`.
    assert sorted(s for s, _ in rejected) == ["ctilink.rejected.stray", "ctilink.rejected.~"]
    assert all("names no network" in r["message"] for _, r in rejected)
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctilink.adapters.cli",
            "rejections",
            "--json",
            "--store",
            str(service.store),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(listed.stdout.splitlines()) == 2  # both kept
    assert "rejected 2 messages sent to a literal wildcard subject" in service.log.read_text()
