"""Crash safety of `ctilink ingest`: SIGKILL mid-file, then the same file again.

A line is reported only once its batch is durable, so whatever a killed run
reported as accepted is in the store, and a re-run of the same file applies
every event exactly once: what the killed run got in is acknowledged as a
duplicate at its original position (I3), the rest is appended in file order (I4).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ctilink.adapters.store.selection import open_service

NETWORK_COUNT = 20
EXPANSIONS = ("exp-1", "exp-2", "exp-3")
USERS = ("ann", "bob", "cy", "dee", "eve")
TIMEOUT = 120


def valid_events(seed: int, count: int) -> list[dict[str, Any]]:
    """`count` events over NETWORK_COUNT networks, each one accepted in file order."""
    rng = random.Random(seed)
    networks = [f"site-{i:02d}" for i in range(NETWORK_COUNT)]
    # Per network: its setup still to send, and what later events may rely on.
    pending: dict[str, list[dict[str, Any]]] = {}
    facts: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(networks):
        flavour = index % 4
        install: dict[str, Any] = {"type": "portal_installed", "platform": "linux_server_edition"}
        if flavour == 1:
            install["upgraded_from"] = "9.1"  # legacy, convertible (M1, M4)
        elif flavour == 2:
            install["platform"] = "windows"  # manual, never central (M2)
        elif flavour == 3:
            install["upgraded_from"] = "11.1"  # manual on Server Edition
        setup = [
            install,
            {
                "type": "system_added",
                "system": "pri",
                "role": "primary",
                "platform": "linux",
                "address": "10.0.0.1",
            },
            {
                "type": "system_added",
                "system": "sec",
                "role": "secondary",
                "platform": "linux",
                "address": "10.0.0.2",
            },
        ] + [
            {
                "type": "system_added",
                "system": exp,
                "role": "expansion",
                "platform": "ip500v2",
                "address": f"10.0.1.{n}",
            }
            for n, exp in enumerate(EXPANSIONS, 1)
        ]
        pending[name] = setup
        facts[name] = {
            "central": install["platform"] == "linux_server_edition",
            "legacy": flavour == 1,
            "users": {},
        }
    systems = ["pri", "sec", *EXPANSIONS]
    events = []
    for serial in range(1, count + 1):
        name = rng.choice(networks)
        setup = pending[name]
        event = setup.pop(0) if setup else random_event(rng, facts[name], systems)
        events.append({**event, "id": f"ev-{serial:06d}", "network": name})
    return events


def random_event(rng: random.Random, facts: dict[str, Any], systems: list[str]) -> dict[str, Any]:
    """One event that the rules accept, given what the network is known to be."""
    users: dict[str, str] = facts["users"]
    roll = rng.random()
    system = rng.choice(systems)
    if roll < 0.30:
        return {
            "type": "link_changed",
            "system": system,
            "component": rng.choice(("csta", "dsml")),
            "up": rng.random() < 0.7,
        }
    if roll < 0.38:
        return {"type": rng.choice(("failover", "failback")), "system": system}
    if roll < 0.44:
        return {"type": "resilience_set", "enabled": rng.random() < 0.6}
    if roll < 0.50:
        kind = rng.choice(("provider_configured", "provider_removed"))
        return {"type": kind, "kind": rng.choice(("csta", "dsml")), "system": system}
    if roll < 0.56:
        entries = [
            {"name": f"N{rng.randrange(50)}", "number": str(rng.randrange(200, 300))}
            for _ in range(rng.randrange(4))
        ]
        return {"type": "directory_changed", "system": system, "entries": entries}
    if roll < 0.64:
        user = rng.choice(USERS)
        users[user] = system
        return {"type": "user_homed", "user": user, "system": system}
    if roll < 0.70 and users:
        user = rng.choice(sorted(users))
        entries = [
            {"name": f"P{rng.randrange(50)}", "number": str(rng.randrange(100, 999))}
            for _ in range(rng.randrange(4))
        ]
        return {
            "type": "personal_directory_changed",
            "system": users[user],
            "user": user,
            "entries": entries,
        }
    if roll < 0.72 and users:
        user = rng.choice(sorted(users))
        del users[user]
        return {"type": "user_removed", "user": user}
    if roll < 0.76:
        return {
            "type": "voicemail_discovered",
            "address": f"10.9.0.{rng.randrange(1, 4)}",
            "system": system,
        }
    if roll < 0.84:
        return {"type": "portal_restarted", "actor": "admin"}
    # The setting the portal shows (M2–M4).
    if facts["legacy"]:
        if facts["central"] and rng.random() < 0.1:
            facts["legacy"] = False
            return {"type": "converted_to_central"}
        return {"type": "auto_provisioning_set", "enabled": rng.random() < 0.5}
    enabled = facts["central"] and rng.random() < 0.6
    return {"type": "central_cti_link_set", "enabled": enabled}


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def ingest_command(store: Path, events_file: Path, jobs: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ctilink.adapters.cli",
        "ingest",
        "--store",
        str(store),
        "--json",
        "--jobs",
        str(jobs),
        str(events_file),
    ]


def parse_reports(output: bytes) -> list[dict[str, Any]]:
    """The complete report lines; a line cut short by the kill is dropped."""
    complete = output[: output.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]


def run_and_kill(command: list[str], cwd: Path, after_lines: int) -> tuple[int, bytes]:
    """Start the command, SIGKILL it once it has printed `after_lines` lines."""
    stderr = open(cwd / "killed.stderr", "wb")  # noqa: SIM115
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr)
    assert proc.stdout is not None
    chunks: list[bytes] = []
    enough = threading.Event()

    def pump() -> None:
        # Drain stdout continuously, so the writer is never held up by the pipe
        # and the kill lands wherever it happens to be: deciding, committing, printing.
        seen = 0
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            chunks.append(chunk)
            seen += chunk.count(b"\n")
            if seen >= after_lines:
                enough.set()
        enough.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert enough.wait(TIMEOUT), "ingest printed nothing in time"
        proc.send_signal(signal.SIGKILL)
        returncode = proc.wait(TIMEOUT)
        reader.join(TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
    return returncode, b"".join(chunks)


def run_to_completion(command: list[str], cwd: Path) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, timeout=TIMEOUT, check=False)
    assert done.stderr == b"", done.stderr.decode(errors="replace")
    return done.returncode, parse_reports(done.stdout)


def check_logs_hold_every_event_once(store: Path, events: list[dict[str, Any]]) -> dict:
    """Every network's log: positions 1..N, unique ids, exactly the file's ids in file order."""
    expected: dict[str, list[str]] = defaultdict(list)
    for event in events:
        expected[event["network"]].append(event["id"])
    where: dict[tuple[str, str], int] = {}
    service = open_service(str(store))
    try:
        for network, ids in expected.items():
            log = list(service.log(network))
            positions = [event.originator_version for event in log]
            logged = [event.message.id for event in log]
            assert positions == list(range(1, len(log) + 1)), network
            assert len(set(logged)) == len(logged), f"{network}: an id is logged twice"
            assert set(logged) == set(ids), network
            assert logged == ids, f"{network}: not in file order"
            where.update({(network, i): p for i, p in zip(logged, positions, strict=True)})
    finally:
        service.close()
    return where


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    events = valid_events(seed=7, count=30_000)
    path = write_jsonl(tmp_path_factory.mktemp("crash") / "events.jsonl", events)
    return path, events


@pytest.mark.parametrize("jobs", [1, 2], ids=["one-process", "two-workers"])
@pytest.mark.parametrize("after_lines", [1, 12_000, 22_000], ids=["early", "midway", "late"])
def test_rerun_after_sigkill_applies_every_event_exactly_once_i3_i4(
    tmp_path: Path,
    big_file: tuple[Path, list[dict[str, Any]]],
    after_lines: int,
    jobs: int,
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    events_file, events = big_file
    store = new_store()
    # With workers, the kill leaves them orphaned: they may still commit the share
    # in hand while the re-run starts, and nothing may be doubled all the same.
    command = ingest_command(store, events_file, jobs)

    returncode, output = run_and_kill(command, tmp_path, after_lines)
    killed = parse_reports(output)
    # The kill landed mid-file, after some lines were reported.
    assert returncode == -signal.SIGKILL, f"ingest ended by itself ({returncode})"
    assert len(killed) >= after_lines
    assert killed[-1]["line"] < len(events)
    assert [r["line"] for r in killed] == list(range(1, len(killed) + 1))
    assert {r["outcome"] for r in killed} == {"accepted"}

    returncode, rerun = run_to_completion(command, tmp_path)
    assert returncode == 0
    assert [r["line"] for r in rerun] == list(range(1, len(events) + 1))
    assert [r["id"] for r in rerun] == [event["id"] for event in events]
    assert {r["outcome"] for r in rerun} <= {"accepted", "duplicate"}
    # Whatever the killed run reported accepted is a duplicate at the same position (I3).
    for report in killed:
        again = rerun[report["line"] - 1]
        assert (again["outcome"], again["position"]) == ("duplicate", report["position"]), (
            report,
            again,
        )

    where = check_logs_hold_every_event_once(store, events)
    for report, event in zip(rerun, events, strict=True):
        assert report["position"] == where[(event["network"], event["id"])], report


def test_rerunning_a_completed_file_reports_every_line_duplicate_and_exits_0_i3(
    tmp_path: Path,
    new_store,  # type: ignore[no-untyped-def]
) -> None:
    events = valid_events(seed=8, count=12_000)  # more than one batch of 5000 lines
    events_file = write_jsonl(tmp_path / "events.jsonl", events)
    store = new_store()
    command = ingest_command(store, events_file)

    returncode, first = run_to_completion(command, tmp_path)
    assert returncode == 0
    assert [r["outcome"] for r in first] == ["accepted"] * len(events)
    where = check_logs_hold_every_event_once(store, events)

    returncode, second = run_to_completion(command, tmp_path)
    assert returncode == 0
    assert [r["line"] for r in second] == list(range(1, len(events) + 1))
    assert [(r["id"], r["outcome"], r["position"], r["code"]) for r in second] == [
        (r["id"], "duplicate", r["position"], None) for r in first
    ]
    assert check_logs_hold_every_event_once(store, events) == where

    # The CLI's own view of one log agrees.
    network = events[0]["network"]
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctilink.adapters.cli",
            "log",
            network,
            "--store",
            str(store),
            "--json",
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    logged = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(e["position"], e["event"]["id"]) for e in logged] == sorted(
        (p, i) for (n, i), p in where.items() if n == network
    )
