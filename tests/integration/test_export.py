"""`ctilink export`: the log as SPEC §2 JSON Lines that rebuild it (Replay and audit tooling).

Ingesting an export into an empty store must give back the same log: the same
status and directory (SPEC §8) and the same hash at every position, also for
events sent without `at` (their receive time is what the chain covered, and
what the export writes as `at`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ctilink.adapters.cli.commands.export import export_lines
from ctilink.adapters.cli.main import main
from ctilink.adapters.store.selection import open_service
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.network import GENESIS, link
from ctilink.projections.directory import directory
from ctilink.projections.status import status

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIO = EXAMPLES / "scenario.jsonl"
NETWORKS = ("acme", "globex", "initech")
CTILINK = Path(sys.executable).parent / "ctilink"


def scenario_without_some_at() -> list[bytes]:
    """The scenario with `at` removed from every third event (they get the receive time)."""
    lines = []
    for number, line in enumerate(SCENARIO.read_bytes().splitlines()):
        event = json.loads(line)
        if number % 3 == 1:
            del event["at"]
        lines.append(json.dumps(event).encode())
    return lines


def ingested(path: Path | str, lines: list[bytes], batch: int = 20) -> Path | str:
    """A store holding `lines`, ingested in a few batches (so receive times differ)."""
    service = open_service(str(path))
    for start in range(0, len(lines), batch):
        outcomes = service.ingest([m.decode(line) for line in lines[start : start + batch]])
        assert {o.outcome for o in outcomes} == {"accepted"}, outcomes
    service.close()
    return path


def every_position(service: NetworkService, network: str) -> list[tuple[Any, ...]]:
    """(position, status, directory, hash) at every position of a network's log."""
    found = []
    for event in service.log(network):
        state, position = service.state_at(network, event.originator_version)
        found.append(
            (
                position,
                msgspec.to_builtins(status(state, position)),
                msgspec.to_builtins(directory(state, position)),
                event.chain,
            )
        )
    return found


def ctilink(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The console script, as an operator runs it."""
    return subprocess.run([str(CTILINK), *args], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module", params=["scenario", "scenario without some at"])
def original(request: pytest.FixtureRequest, new_store) -> Path | str:  # type: ignore[no-untyped-def]
    """The example scenario in a store, as sent, or with `at` left out of some events."""
    lines = SCENARIO.read_bytes().splitlines()
    if request.param != "scenario":
        lines = scenario_without_some_at()
    return ingested(new_store(), lines)


def test_ingesting_the_export_into_an_empty_store_gives_the_same_log(original, tmp_path, new_store):
    exported = tmp_path / "export.jsonl"
    run = ctilink("export", "--store", str(original))
    assert (run.returncode, run.stderr) == (0, b"")
    exported.write_bytes(run.stdout)

    copy = new_store()
    run = ctilink("ingest", str(exported), "--json", "--store", str(copy))
    assert run.returncode == 0
    assert {json.loads(line)["outcome"] for line in run.stdout.splitlines()} == {"accepted"}

    before, after = open_service(str(original)), open_service(str(copy))
    for network in NETWORKS:
        assert every_position(after, network) == every_position(before, network)
    # And the export of the copy is the export itself: nothing drifts on a second pass.
    assert (
        b"".join(line for n in NETWORKS for line in export_lines(after, n)) == exported.read_bytes()
    )
    before.close()
    after.close()


def test_an_event_without_at_is_exported_with_its_receive_time_in_utc(tmp_path, capsys):
    store = ingested(tmp_path / "ctilink.db", scenario_without_some_at())
    service = open_service(str(store))
    received = {e.message.id: e.timestamp for e in service.log("acme") if e.message.at is None}
    service.close()
    assert received  # the scenario variant has some

    assert main(["export", "acme", "--store", str(store)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    for event in lines:
        assert "at" in event
        if event["id"] in received:
            at = datetime.fromisoformat(event["at"])
            assert at == received[event["id"]]
            assert at.utcoffset().total_seconds() == 0
            assert event["at"].endswith("Z")


def test_an_exported_line_is_the_event_as_accepted_envelope_first(tmp_path, capsys):
    store = ingested(tmp_path / "ctilink.db", SCENARIO.read_bytes().splitlines())

    assert main(["export", "globex", "--store", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()

    sent = [json.loads(line) for line in SCENARIO.read_bytes().splitlines()]
    sent = [e for e in sent if e["network"] == "globex"]
    # Equal as events (defaults such as `"actor": "system"` are not written out).
    assert [m.decode(line) for line in lines] == [m.decode(json.dumps(e)) for e in sent]
    assert all(list(json.loads(line))[:4] == ["type", "id", "network", "at"] for line in lines)


def test_export_without_a_network_writes_every_network_by_name(original, capsys):
    service = open_service(str(original))
    each = b"".join(line for n in NETWORKS for line in export_lines(service, n))
    service.close()

    assert main(["export", "--store", str(original)]) == 0
    assert capsys.readouterr().out.encode() == each


def test_export_of_an_unknown_network_exits_2(original, capsys):
    assert main(["export", "nope", "--store", str(original)]) == 2
    assert capsys.readouterr().err == "ctilink: unknown network 'nope'\n"


def test_the_receive_time_really_is_what_the_chain_covers(tmp_path):
    # Without `at`, the same event received at another time has another hash.
    # So a round trip that kept the hashes did carry the receive time.
    line = b'{"type":"portal_installed","id":"i","network":"n","platform":"windows"}'
    content = m.Content(m.decode(line))

    first = link(GENESIS, content, datetime(2024, 1, 1, tzinfo=UTC))
    second = link(GENESIS, content, datetime(2024, 1, 2, tzinfo=UTC))
    assert first != second
