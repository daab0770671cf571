"""The maintenance schedule and machine modes as pure values, with Mesos' validation messages."""

from __future__ import annotations

import pytest

from mesolite.master.maintenance import (
    MachineID,
    Maintenance,
    MaintenanceError,
    Unavailability,
    Window,
    machines_error,
    schedule_error,
    unavailability_overlaps,
)

H1 = MachineID("Host1", "10.0.0.1")
H2 = MachineID("host2", "10.0.0.2")
SOON = Unavailability(10**18, 3600 * 10**9)


def test_machine_identity_and_validation() -> None:
    assert MachineID("HOST1", "10.0.0.1") == H1 and MachineID("host1") != H1  # presence matters
    assert H1.debug_string() == 'hostname: "Host1"\nip: "10.0.0.1"\n'
    assert schedule_error([Window((), SOON)], []) == "List of machines in the maintenance window is empty"
    assert schedule_error([Window((MachineID(),), SOON)], []) == "Both 'hostname' and 'ip' for a machine are empty"
    assert schedule_error([Window((MachineID("h", "1.2.3"),), SOON)], []) == "Failed to parse IPv4: 1.2.3"
    assert schedule_error([Window((H1,), Unavailability(0, -1))], []) == "Unavailability 'duration' is negative"
    twice = schedule_error([Window((H1,), SOON), Window((MachineID("host1", "10.0.0.1"),), SOON)], [])
    assert twice == 'Machine \'hostname: "host1"\nip: "10.0.0.1"\n\' appears more than once in the schedule'
    assert schedule_error([Window((H2,), SOON)], [H1]) == (
        f"Machine '{H1.debug_string()}' is deactivated and cannot be removed from the schedule"
    )
    assert machines_error([]) == "List of machines is empty"


def test_modes_up_draining_down_up() -> None:
    maintenance = Maintenance()
    assert maintenance.mode(H1) == "UP" and maintenance.unavailability(H1) is None
    maintenance.update_schedule([Window((H1, H2), SOON)])
    assert maintenance.mode(H1) == "DRAINING" and maintenance.unavailability(H1) == SOON
    with pytest.raises(MaintenanceError, match="is not in DOWN mode and cannot be brought up"):
        maintenance.stop([H1])
    with pytest.raises(MaintenanceError, match="is not part of a maintenance schedule"):
        maintenance.start([MachineID("elsewhere")])
    maintenance.record_answer(H2, "fw-1", "DECLINE", now=5.0)
    maintenance.start([H1])
    assert maintenance.mode(H1) == "DOWN" and maintenance.unavailability(H1) is None
    with pytest.raises(MaintenanceError, match="is not in DRAINING mode and cannot be brought down"):
        maintenance.start([H1])
    assert maintenance.status_json() == {
        "draining_machines": [
            {
                "id": {"hostname": "host2", "ip": "10.0.0.2"},
                "statuses": [
                    {"status": "DECLINE", "framework_id": {"value": "fw-1"}, "timestamp": {"nanoseconds": 5 * 10**9}}
                ],
            }
        ],
        "down_machines": [{"hostname": "Host1", "ip": "10.0.0.1"}],
    }
    copy = Maintenance.from_record(maintenance.to_record())
    assert copy.mode(H1) == "DOWN" and copy.mode(H2) == "DRAINING"
    maintenance.stop([H1])
    assert maintenance.mode(H1) == "UP"
    assert maintenance.schedule_json()["windows"][0]["machine_ids"] == [{"hostname": "host2", "ip": "10.0.0.2"}]
    maintenance.update_schedule([])
    assert maintenance.schedule_json() == {} and maintenance.status_json() == {}


def test_unavailability_overlap() -> None:
    window = {"start": {"nanoseconds": 100 * 10**9}, "duration": {"nanoseconds": 10 * 10**9}}
    assert unavailability_overlaps(window, 105.0) and not unavailability_overlaps(window, 111.0)
    assert not unavailability_overlaps(window, 50.0) and unavailability_overlaps(window, 50.0, horizon=60.0)
    assert unavailability_overlaps({"start": {"nanoseconds": 0}}, 1e9)  # no duration: forever
