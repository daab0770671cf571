"""RecordIO framing and status helpers."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesolite.core import protocol as proto

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=5), st.integers(1, 7))
def test_recordio_survives_any_rechunking(events: list[dict], chunk: int) -> None:
    stream = b"".join(proto.recordio(e) for e in events)
    decoder = proto.RecordIODecoder()
    decoded = []
    for start in range(0, len(stream), chunk):
        decoded.extend(decoder.feed(stream[start : start + chunk]))
    assert decoded == events


def test_recordio_format_is_length_newline_json() -> None:
    record = proto.recordio({"type": "HEARTBEAT"})
    assert record == b'20\n{"type":"HEARTBEAT"}'
    with pytest.raises(ValueError):
        list(proto.RecordIODecoder().feed(b"x\n{}"))


def test_task_status_shape() -> None:
    status = proto.task_status("t", "TASK_RUNNING", agent_id="a", reason="R", message="m")
    assert status["task_id"] == {"value": "t"} and status["agent_id"] == {"value": "a"}
    assert len(base64.b64decode(status["uuid"])) == 16
    assert "uuid" not in proto.task_status("t", "TASK_LOST", with_uuid=False)
    json.dumps(status)


def test_partition_aware_states_are_downgraded_for_others() -> None:
    status = proto.task_status("t", "TASK_UNREACHABLE")
    assert proto.for_framework(status, partition_aware=False)["state"] == "TASK_LOST"
    assert proto.for_framework(status, partition_aware=True)["state"] == "TASK_UNREACHABLE"
    assert proto.for_framework(proto.task_status("t", "TASK_RUNNING"), False)["state"] == "TASK_RUNNING"
