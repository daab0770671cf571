"""The operator API's edge: JSON converted as stout converts it, then validated, with Mesos' messages."""

from __future__ import annotations

import pytest

from mesolite.core.protobuf_json import CallError
from mesolite.master import operator_calls as oc


def error(raw: object) -> str:
    with pytest.raises(CallError) as info:
        oc.parse(raw)
    return info.value.message


def test_conversion_and_validation_messages() -> None:
    assert error([]) == "Failed to convert JSON into Call protobuf: Expecting a JSON object"
    assert error({}) == "Failed to validate master::Call: Expecting 'type' to be present"
    assert error({"type": "BREW"}) == "Failed to validate master::Call: Expecting 'type' to be present"
    assert (
        error({"type": 3}) == "Failed to convert JSON into Call protobuf: Not expecting a JSON number for field 'type'"
    )
    assert error({"type": "DRAIN_AGENT"}) == "Failed to validate master::Call: Expecting 'drain_agent' to be present"
    assert error({"type": "GET_HEALTH", "drain_agent": {}}) == (
        "Failed to convert JSON into Call protobuf: Missing required fields: drain_agent.agent_id"
    )
    quota = {"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [{"limits": {"cpus": {}}}]}}
    assert error(quota) == (
        "Failed to convert JSON into Call protobuf: Missing required fields: update_quota.quota_configs[0].role, "
        "update_quota.quota_configs[0].limits[cpus].value"
    )
    assert error({"type": "READ_FILE", "read_file": {"path": "/x", "offset": "ten"}}).startswith(
        "Failed to convert JSON into Call protobuf: Failed to convert 'ten' to number for field 'offset'"
    )


def test_typed_calls() -> None:
    drain = oc.parse(
        {
            "type": "DRAIN_AGENT",
            "drain_agent": {"agent_id": {"value": "S1"}, "max_grace_period": {"seconds": "10"}, "mark_gone": "true"},
            "unknown_field": 1,
        }
    )
    assert oc.drain_agent(drain) == oc.DrainAgent("S1", 10.0, True)
    assert oc.drain_agent(
        oc.parse({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "S1"}, "mark_gone": None}})
    ) == oc.DrainAgent("S1", None, False)
    windows = oc.schedule_windows(
        {"windows": [{"machine_ids": [{"hostname": "h"}], "unavailability": {"start": {"nanoseconds": 5}}}]}
    )
    assert windows[0].machines[0].hostname == "h" and windows[0].unavailability.duration_ns is None
    configs, force = oc.quota_configs(
        oc.parse(
            {
                "type": "UPDATE_QUOTA",
                "update_quota": {"force": True, "quota_configs": [{"role": "r", "limits": {"cpus": {"value": "2"}}}]},
            }
        )
    )
    assert force and configs[0].limits == {"cpus": 2.0}
    with pytest.raises(CallError, match="Weights must be positive"):
        oc.weights(
            oc.parse({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "r", "weight": -1}]}})
        )
