"""Group semantics in the service, called as the API calls it: typed arguments in, domain errors out."""

from __future__ import annotations

from typing import Any

import pytest

from mesolite.core.store import MemoryStore
from mesolite.marathon.api.errors import body_of, status_of
from mesolite.marathon.api.groups import parse_update
from mesolite.marathon.appdef import BadJson, Invalid, normalize_app
from mesolite.marathon.errors import AlreadyExists, Locked, NotFound
from mesolite.marathon.groups import AppUpdate, GroupUpdate
from mesolite.marathon.service import Marathon, MarathonConfig
from mesolite.marathon.state import Deployment


@pytest.fixture
def marathon() -> Marathon:
    service = Marathon(MarathonConfig(master="127.0.0.1:1", work_dir=""), MemoryStore())
    service.loaded.set()
    return service


def app(app_id: str, instances: int = 1, **fields: Any) -> dict[str, Any]:
    return normalize_app({"id": app_id, "cmd": "sleep 60", "instances": instances, **fields})


def shop() -> GroupUpdate:
    return parse_update(
        {
            "id": "/shop",
            "groups": [
                {"id": "db", "apps": [{"id": "pg", "cmd": "sleep 60"}]},
                {"id": "web", "dependencies": ["db"], "apps": [{"id": "ui", "cmd": "sleep 60", "instances": 3}]},
            ],
        },
        "/shop",
    )


def test_a_group_update_is_parsed_with_absolute_ids_and_marathons_error_paths() -> None:
    update = shop()
    assert [g.id for g in update.groups or []] == ["/shop/db", "/shop/web"]
    web = (update.groups or [])[1]
    assert web.dependencies == ["/shop/db"]  # relative to the group's parent
    assert [a["id"] for a in web.apps or []] == ["/shop/web/ui"]
    assert update.apps is None and update.dependencies is None  # not given: kept as they are
    with pytest.raises(Invalid) as invalid:
        parse_update({"groups": [{"id": "ok"}, {"id": "/elsewhere"}]}, "/shop")
    assert invalid.value.errors == [
        ("/groups(1)/id", "identifier /elsewhere is not child of /shop. Hint: use relative paths.")
    ]
    with pytest.raises(Invalid) as invalid:
        parse_update({"apps": [{"id": "x", "cmd": "true", "cpus": -1}]}, "/g")
    assert invalid.value.errors[0][0] == "/apps(0)/cpus"
    with pytest.raises(BadJson):
        parse_update({"dependencies": "db"}, "/g")


def test_a_group_is_created_once_and_updates_replace_what_they_name(marathon: Marathon) -> None:
    marathon.create_group(shop())
    assert marathon.state.app_group == {"/shop/db/pg": "/shop/db", "/shop/web/ui": "/shop/web"}
    assert marathon.state.groups["/shop/web"]["dependencies"] == ["/shop/db"]
    with pytest.raises(AlreadyExists, match=r"Group /shop is already created"):
        marathon.create_group(shop(), force=True)
    # Naming only the db subgroup removes the web subgroup and its app; the db app is replaced as given.
    update = parse_update({"groups": [{"id": "db", "apps": [{"id": "pg", "cmd": "sleep 1", "instances": 2}]}]}, "/shop")
    marathon.update_group(update, force=True)
    assert sorted(marathon.state.apps) == ["/shop/db/pg"]
    assert "/shop/web" not in marathon.state.groups
    assert marathon.state.apps["/shop/db/pg"]["instances"] == 2


def test_scaling_a_group_rounds_up_and_a_dry_run_changes_nothing(marathon: Marathon) -> None:
    marathon.create_group(shop())
    steps = marathon.scale_group("/shop", 1.5, force=True, dry_run=True)
    assert not isinstance(steps, Deployment)
    assert {a["app"] for step in steps for a in step} == {"/shop/db/pg", "/shop/web/ui"}
    assert marathon.state.apps["/shop/web/ui"]["instances"] == 3
    marathon.scale_group("/shop", 1.5, force=True)
    assert (marathon.state.apps["/shop/db/pg"]["instances"], marathon.state.apps["/shop/web/ui"]["instances"]) == (2, 5)
    with pytest.raises(NotFound, match=r"^Group '/nope' does not exist$"):
        marathon.scale_group("/nope", 2, force=True)


def test_a_group_rolls_back_to_a_version(marathon: Marathon) -> None:
    first = marathon.create_group(shop())
    marathon.update_group(parse_update({"apps": [{"id": "extra", "cmd": "sleep 1"}], "groups": []}, "/shop"), True)
    assert sorted(marathon.state.apps) == ["/shop/extra"]
    marathon.rollback_group("/shop", first.version, force=True)
    assert sorted(marathon.state.apps) == ["/shop/db/pg", "/shop/web/ui"]
    assert marathon.state.groups["/shop/web"]["dependencies"] == ["/shop/db"]
    with pytest.raises(NotFound, match=r"^Group '/shop' does not exist in version 1999$"):
        marathon.rollback_group("/shop", "1999")


def test_deleting_a_group_removes_everything_below_it(marathon: Marathon) -> None:
    marathon.create_group(shop())
    marathon.create_app(app("/alone"))
    marathon.delete_group("/shop", force=True)
    assert sorted(marathon.state.apps) == ["/alone"]
    assert not [g for g in marathon.state.groups if g.startswith("/shop")]
    with pytest.raises(NotFound):
        marathon.delete_group("/shop")


def test_app_updates_merge_roll_back_and_refuse_in_marathons_words(marathon: Marathon) -> None:
    created = marathon.create_app(app("/a", labels={"team": "x"}))
    with pytest.raises(AlreadyExists, match=r"^An app with id \[/a\] already exists\.$"):
        marathon.create_app(app("/a"), force=True)
    with pytest.raises(Locked) as locked:
        marathon.update_apps([AppUpdate("/a", {"instances": 2})])
    assert locked.value.deployment_ids == [created.id]
    assert (status_of(locked.value), body_of(locked.value)["deployments"]) == (409, [{"id": created.id}])
    marathon.update_apps([AppUpdate("/a", {"instances": 2})], force=True)
    assert marathon.state.apps["/a"]["labels"] == {"team": "x"}  # partial: the rest is kept
    marathon.update_apps([AppUpdate("/a", {"cmd": "sleep 1"}, partial=False)], force=True)
    assert (marathon.state.apps["/a"]["instances"], marathon.state.apps["/a"]["labels"]) == (1, {})
    marathon.update_apps([AppUpdate("/a", {"version": created.version})], force=True)
    assert marathon.state.apps["/a"]["labels"] == {"team": "x"}
    with pytest.raises(NotFound, match=r"^App '/b' does not exist$") as missing:
        marathon.update_apps([AppUpdate("/b", {"instances": 1})], force=True, must_exist=True)
    assert status_of(missing.value) == 404
    with pytest.raises(NotFound, match=r"^App '/a' does not exist in version 1999$"):
        marathon.update_apps([AppUpdate("/a", {"version": "1999"})], force=True)
