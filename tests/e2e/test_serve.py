"""`ctilink serve` against a real nats-server: ingest, outbound subjects, queries, faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from nats.errors import MaxPayloadError

from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from tests.e2e.conftest import ROOT, Service, scenario, stream_messages, wait_for
from tests.e2e.traffic import (
    check_exactly_once,
    event_ids,
    many_events,
    publish_all,
    settled_event_ids,
)

EXPECTED = {
    n: json.loads((ROOT / f"examples/expected-{n}-status.json").read_text())
    for n in ("acme", "globex")
}


async def test_events_reach_every_outbound_subject_once_and_queries_answer_s8(nc, service):
    lines = scenario()

    await publish_all(nc, lines)

    async def all_published() -> bool:
        return sum((await event_ids(nc)).values()) >= len(lines)

    await wait_for(all_published)
    ids = await event_ids(nc)
    assert len(ids) == len(lines) and set(ids.values()) == {1}
    assert "acme:27" in ids and "globex:17" in ids
    # The status endpoint answers exactly what the CLI answers (SPEC §8).
    for network, expected in EXPECTED.items():
        reply = await nc.request("ctilink.api.status", json.dumps({"network": network}).encode())
        assert json.loads(reply.data) == expected
    at = await nc.request("ctilink.api.status", b'{"network":"globex","at":16}')
    assert json.loads(at.data)["mode"]["restart_pending"] is True
    listing = json.loads((await nc.request("ctilink.api.networks", b"{}")).data)
    assert listing == [
        {"network": "acme", "position": 27, "effective": "central"},
        {"network": "globex", "position": 17, "effective": "central"},
        {"network": "initech", "position": 9, "effective": "manual"},
    ]
    directory = json.loads((await nc.request("ctilink.api.directory", b'{"network":"acme"}')).data)
    assert directory["network"] == "acme" and directory["system"]
    # Providers and status go out only for positions that changed them.
    providers = await stream_messages(nc, "CTILINK_OUT", "ctilink.providers.globex")
    last = json.loads(providers[-1].data)
    assert last["position"] == 17 and last["providers"] == EXPECTED["globex"]["providers"]
    statuses = await stream_messages(nc, "CTILINK_OUT", "ctilink.status.acme")
    positions = [json.loads(m.data)["position"] for m in statuses]
    assert positions == sorted(positions) and len(positions) < 27


async def installed(nc, network: str) -> bool:
    """True once the service answers for the network."""
    reply = await nc.request("ctilink.api.status", json.dumps({"network": network}).encode())
    return not reply.headers


async def test_query_errors_come_back_as_400_and_404(nc, service):
    await publish_all(nc, scenario()[:1])
    await wait_for(lambda: installed(nc, "acme"))

    unknown = await nc.request("ctilink.api.status", b'{"network":"nope"}')
    bad = await nc.request("ctilink.api.status", b'{"network":"acme","extra":1}')
    out_of_range = await nc.request("ctilink.api.directory", b'{"network":"acme","at":99}')
    not_json = await nc.request("ctilink.api.networks", b"[")

    assert unknown.headers["Nats-Service-Error-Code"] == "404"
    assert bad.headers["Nats-Service-Error-Code"] == "400"
    assert "extra" in bad.headers["Nats-Service-Error"]
    assert out_of_range.headers["Nats-Service-Error-Code"] == "400"
    assert not_json.headers["Nats-Service-Error-Code"] == "400"


async def test_api_ingest_answers_at_once_as_the_cli_line_i3(nc, service):
    event = b'{"type":"portal_installed","id":"i1","network":"solo","platform":"windows"}'

    first = json.loads((await nc.request("ctilink.api.ingest", event)).data)
    again = json.loads((await nc.request("ctilink.api.ingest", event)).data)
    bad = json.loads((await nc.request("ctilink.api.ingest", b'{"type":"nope"}')).data)

    assert first == {"outcome": "accepted", "position": 1, "code": None, "message": None}
    assert again == {"outcome": "duplicate", "position": 1, "code": None, "message": None}
    assert (bad["outcome"], bad["code"]) == ("rejected", "invalid")


async def test_bad_inbound_messages_are_rejected_and_the_service_keeps_going_i1(nc, service):
    js = nc.jetstream()
    install = b'{"type":"portal_installed","id":"i1","network":"acme","platform":"windows"}'

    await js.publish("ctilink.in.acme", b"garbage")
    await js.publish("ctilink.in.other", install)  # the subject names another network
    await js.publish("ctilink.in.acme", b'{"type":"portal_restarted","id":"r","network":"acme"}')
    with pytest.raises(MaxPayloadError):  # NATS itself refuses what is over its 1 MiB limit
        await js.publish("ctilink.in.acme", b'{"x":"' + b"y" * (1 << 20) + b'"}')
    await js.publish("ctilink.in.acme", b'{"type":"portal_installed","id":7}')
    await js.publish("ctilink.in.acme", install)

    async def five_handled() -> bool:
        rejected = await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")
        return len(rejected) == 4 and bool(
            await stream_messages(nc, "CTILINK_OUT", "ctilink.events.>")
        )

    await wait_for(five_handled)
    rejected = [
        (m.subject, json.loads(m.data))
        for m in await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")
    ]
    # In the order sent within a network (networks go by partitions of their own).
    by_network = {
        subject: [r for s, r in rejected if s == subject]
        for subject in ("ctilink.rejected.acme", "ctilink.rejected.other")
    }
    assert [r["code"] for r in by_network["ctilink.rejected.acme"]] == [
        "invalid",
        "not_installed",
        "invalid",
    ]
    assert [r["code"] for r in by_network["ctilink.rejected.other"]] == ["invalid"]
    assert by_network["ctilink.rejected.acme"][0]["payload"] == "garbage"
    assert "subject" in by_network["ctilink.rejected.other"][0]["message"]
    status_reply = json.loads((await nc.request("ctilink.api.status", b'{"network":"acme"}')).data)
    assert status_reply["position"] == 1
    assert service.stop() == 0


async def test_kill_9_mid_stream_then_restart_loses_and_doubles_nothing(nc, service, tmp_path):
    lines = many_events(3_000, networks=8, seed=1)
    js = nc.jetstream()

    publishing = asyncio.create_task(publish_all(nc, lines))
    await wait_for(lambda: _log_has_events(service.store), timeout=30, every=0.02)
    service.kill()
    await publishing
    service.start()

    ids = await settled_event_ids(nc, service.store, len(lines))
    check_exactly_once(service.store, lines, ids)
    inbound = await js.stream_info("CTILINK_IN")
    assert inbound.state.messages == 0  # every inbound message acked (work queue)


async def _log_has_events(store: Path | str) -> bool:
    """True once the service has committed a few hundred events (on either store)."""
    try:
        with contextlib.closing(open_service(str(store), create=False)) as reading:
            return (reading.recorder.max_notification_id() or 0) > 300
    except Exception:  # not made yet
        return False


async def test_nats_restart_while_events_flow_loses_and_doubles_nothing(nc, service, nats_server):
    lines = many_events(2_000, networks=5, seed=2)
    first, second = lines[:1_000], lines[1_000:]

    await publish_all(nc, first)
    await wait_for(lambda: _log_has_events(service.store), timeout=30, every=0.02)
    nats_server.kill()
    await asyncio.sleep(1)
    nats_server.start()  # same port, same store: streams and acks survive
    await publish_all(nc, second)

    ids = await settled_event_ids(nc, service.store, len(lines))
    check_exactly_once(service.store, lines, ids)
    assert "reconnected" in service.log.read_text()
    assert service.stop() == 0


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ctilink CLI."""
    return subprocess.run(
        [sys.executable, "-m", "ctilink.adapters.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )


async def test_cli_queries_a_running_service_with_nats_flag_s8(nc, service, tmp_path):
    await publish_all(nc, scenario())
    await wait_for(lambda: installed(nc, "initech"))
    await wait_for(lambda: installed(nc, "globex"))
    url = service.url
    missing_store = str(tmp_path / "no-store-here.db")

    status_run = cli("status", "acme", "--json", "--nats", url, "--store", missing_store)
    human = cli("status", "globex", "--at", "16", "--nats", url)
    networks = cli("networks", "--json", "--nats", url)
    unknown = cli("directory", "nope", "--nats", url)
    nobody = cli("status", "acme", "--nats", "nats://127.0.0.1:1")

    assert status_run.returncode == 0, status_run.stderr
    assert json.loads(status_run.stdout) == EXPECTED["acme"]
    assert not Path(missing_store).exists()  # the store is not touched
    assert human.returncode == 0 and "restart pending    yes" in human.stdout
    assert [n["network"] for n in json.loads(networks.stdout)] == ["acme", "globex", "initech"]
    assert unknown.returncode == 2 and unknown.stderr.strip() == "ctilink: unknown network 'nope'"
    assert nobody.returncode == 2 and "Traceback" not in nobody.stderr
    assert nobody.stderr.startswith("ctilink: cannot connect to NATS")


async def test_a_publisher_in_the_service_process_publishes_every_event_once(
    nc, tmp_path, nats_server
):
    svc = Service(
        tmp_path / "p.db", nats_server.url, tmp_path / "p.log", extra=["--publisher-in-process"]
    )
    svc.start()
    lines = scenario()
    await publish_all(nc, lines)

    async def all_published() -> bool:
        return sum((await event_ids(nc)).values()) >= len(lines)

    await wait_for(all_published)
    await asyncio.sleep(0.5)
    ids = await event_ids(nc)

    assert len(ids) == len(lines) and set(ids.values()) == {1}
    assert svc.stop() == 0


async def test_sigterm_while_queries_are_being_answered_exits_0(nc, nats_server, tmp_path):
    store = tmp_path / "busy.db"
    lines = many_events(1_200, networks=400, seed=9)
    filled = open_service(str(store))
    filled.ingest([m.decode(line) for line in lines])
    filled.close()
    svc = Service(store, nats_server.url, tmp_path / "busy.log")
    svc.start()
    stop = asyncio.Event()

    async def ask() -> None:  # reads in flight: listings, and states from the log
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await nc.request("ctilink.api.networks", b"{}", timeout=5)
                await nc.request("ctilink.api.status", b'{"network":"net-7","at":1}', timeout=5)

    asking = [asyncio.ensure_future(ask()) for _ in range(4)]
    await asyncio.sleep(1.5)
    code = await asyncio.to_thread(svc.stop)
    stop.set()
    await asyncio.gather(*asking)

    log = svc.log.read_text()
    assert code == 0, log  # no read left running while the store closed
    assert "Fatal Python error" not in log and "Traceback" not in log


async def test_every_rejection_from_nats_files_and_the_api_reaches_ctilink_out_once(
    nc, service, tmp_path
):
    js = nc.jetstream()
    await js.publish("ctilink.in.acme", b"garbage")  # NATS: invalid, named by its subject
    await nc.request(
        "ctilink.api.ingest", b'{"type":"portal_restarted","id":"a1","network":"acme"}'
    )
    lines = tmp_path / "events.jsonl"
    lines.write_bytes(
        b'{"type":"nope"}\n{"type":"portal_restarted","id":"f\\u202e1","network":"beta"}\n'
    )
    ingest = [sys.executable, "-m", "ctilink.adapters.cli", "ingest", str(lines)]
    assert subprocess.run([*ingest, "--store", str(service.store)], cwd=ROOT).returncode == 1

    async def four() -> bool:
        return len(await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")) >= 4

    await wait_for(four)
    service.stop()  # and again: what was published is not published twice
    service.start()
    await asyncio.sleep(1.0)
    out = await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")

    found = {m.headers["Nats-Msg-Id"]: (m.subject, m.headers, json.loads(m.data)) for m in out}
    assert len(out) == len(found) == 4
    store = {msg_id.split(".")[1] for msg_id in found}
    assert len(store) == 1 and all(i.startswith("rejected.") for i in found)
    by_source = {
        body["source"]: (subject, headers, body) for subject, headers, body in found.values()
    }
    nats_one, api_one = by_source["nats"], by_source["api"]
    assert nats_one[0] == api_one[0] == "ctilink.rejected.acme"
    assert (nats_one[2]["code"], nats_one[2]["payload"]) == ("invalid", "garbage")
    assert (api_one[1]["Ctilink-Code"], api_one[1]["Ctilink-Event-Id"]) == ("not_installed", "a1")
    files = sorted(
        (body["position"], subject, headers.get("Ctilink-Event-Id"), body["code"])
        for subject, headers, body in found.values()
        if body["source"] == "file"
    )
    assert files == [
        (1, "ctilink.rejected.~", None, "invalid"),  # names no network
        (2, "ctilink.rejected.beta", "f\\u202e1", "not_installed"),  # a header shows escapes
    ]
    for _, headers, body in found.values():
        assert headers["Ctilink-Time"] == body["received"].replace("Z", "+00:00")
    assert service.stop() == 0


async def test_rejections_after_ctilink_in_is_made_again_are_not_taken_for_copies(nc, service):
    js = nc.jetstream()
    await js.publish("ctilink.in.acme", b"first garbage")

    async def rejected(count: int) -> bool:
        return len(await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")) >= count

    await wait_for(lambda: rejected(1))
    assert service.stop() == 0
    await js.delete_stream("CTILINK_IN")  # its sequences start again at 1
    service.start()
    await js.publish("ctilink.in.acme", b"second garbage")  # sequence 1 again
    await wait_for(lambda: rejected(2))

    out = await stream_messages(nc, "CTILINK_OUT", "ctilink.rejected.>")
    assert [json.loads(m.data)["payload"] for m in out] == ["first garbage", "second garbage"]
    assert service.stop() == 0


def ctilink(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a process."""
    command = [sys.executable, "-m", "ctilink.adapters.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


async def test_limits_an_operator_sets_on_ctilink_out_survive_restarts_of_serve(nc, service):
    js = nc.jetstream()
    made = (await js.stream_info("CTILINK_OUT")).config
    assert (made.max_age, made.max_bytes) == (30 * 86_400, -1)  # the defaults of a new stream

    changed = ctilink(
        "streams",
        "--nats",
        service.url,
        "--out-max-age",
        "2h",
        "--out-max-bytes",
        "512MiB",
        "--json",
    )
    assert changed.returncode == 0, changed.stderr
    shown = {s["name"]: s for s in json.loads(changed.stdout)}
    assert (shown["CTILINK_OUT"]["max_age_seconds"], shown["CTILINK_OUT"]["max_bytes"]) == (
        7200,
        512 << 20,
    )
    assert service.stop() == 0
    service.start()  # serve makes nothing over again
    assert service.stop() == 0

    kept = (await js.stream_info("CTILINK_OUT")).config
    assert (kept.max_age, kept.max_bytes) == (7200, 512 << 20)
    table = ctilink("streams", "--nats", service.url)
    row = next(line.split() for line in table.stdout.splitlines() if line.startswith("CTILINK_OUT"))
    assert row[:5] == ["CTILINK_OUT", "limits", "1", "2h", "536,870,912"], table.stdout


async def test_a_stream_ctilink_cannot_use_is_refused_in_one_line_and_left_as_it_is(
    nc, nats_server, tmp_path
):
    js = nc.jetstream()
    await js.add_stream(name="CTILINK_IN", subjects=["ctilink.in.>"])  # no partitions
    served = Service(tmp_path / "ctilink.db", nats_server.url, tmp_path / "serve.log")
    with pytest.raises(AssertionError):  # it never says it is ready
        served.start()
    assert served.process is not None and served.process.wait(30) == 2
    said = served.log.read_text()
    assert "stream CTILINK_IN exists but takes subjects ['ctilink.in.>']" in said, said
    assert "Traceback" not in said
    assert (await js.stream_info("CTILINK_IN")).config.subjects == ["ctilink.in.>"]


def test_a_retention_that_is_no_duration_is_refused_before_anything_starts(tmp_path):
    done = ctilink("serve", "--store", str(tmp_path / "s.db"), "--out-max-age", "soon")

    assert done.returncode == 2
    assert done.stderr.strip() == (
        "ctilink: --out-max-age='soon': a duration such as 30d, 12h, 45m or 0 is needed"
    )
