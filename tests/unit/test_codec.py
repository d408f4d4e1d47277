"""The stored record: a log position written once from the bytes decoding made, read back whole."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from eventsourcing.persistence import JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from ctilink.adapters.store.persistence.codec import NetworkMapper
from ctilink.domain import messages as m
from ctilink.domain.decoding import Invalid, decode_encoded
from ctilink.domain.network import Network

MAPPER = NetworkMapper(transcoder=JSONTranscoder())
text = st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s)
events = st.one_of(
    st.builds(
        lambda i, u, s, a: {"type": "user_homed", "id": i, "user": u, "system": s, "actor": a},
        text,
        text,
        st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True),
        text,
    ),
    st.builds(
        lambda i, names: {
            "type": "directory_changed",
            "id": i,
            "system": "s1",
            "entries": [{"name": n, "number": "1", "ex_directory": n < "m"} for n in names],
        },
        text,
        st.lists(text, max_size=5),
    ),
)


@given(events, st.booleans())
@settings(max_examples=300)
def test_a_position_is_stored_as_the_same_bytes_whether_encoded_again_or_not(body, with_at):
    if with_at:
        body["at"] = "2026-01-02T03:04:05+01:00"
    raw = json.dumps({**body, "network": "n"}).encode()
    event, encoded = decode_encoded(raw)
    assert isinstance(event, m.Message), event
    installed = m.decode(b'{"type":"portal_installed","id":"i","network":"n","platform":"ucm"}')
    network = Network.install(installed, datetime.now(UTC), m.Content(installed))
    network.record(event, datetime.now(UTC), m.Content(event, encoded))
    recorded = network.pending_events[-1]

    reused = MAPPER.to_stored_event(recorded).state
    again = MAPPER.to_stored_event(dataclasses.replace(recorded, encoded=None)).state

    assert reused == again
    assert (recorded.encoded is None) == with_at  # an `at` is kept apart: encoded again
    assert MAPPER.to_domain_event(MAPPER.to_stored_event(recorded)).message == event


def test_a_log_written_before_the_entry_bound_is_still_read_whole_i1_v1_1():
    long = "n" * 5000  # valid before SPEC v1.1 bounded entries to 256 characters
    event = m.DirectoryChanged(id="d", network="n", system="s", entries=(m.Entry(long, long),))
    installed = m.decode(b'{"type":"portal_installed","id":"i","network":"n","platform":"ucm"}')
    network = Network.install(installed, datetime.now(UTC), m.Content(installed))
    network.record(event, datetime.now(UTC), m.Content(event))

    row = MAPPER.to_stored_event(network.pending_events[-1])
    snapshot = MAPPER.to_stored_event(Network.Snapshot.take(network))

    assert MAPPER.to_domain_event(row).message.entries[0].name == long
    assert MAPPER.to_domain_event(snapshot).state["state"].directories["s"][0].number == long
    assert isinstance(decode_encoded(m.encode(event))[0], Invalid)  # new ones are refused
