"""The reference implementation's own fixtures, reproduced through ``evaluate``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from attrs import evolve

from tests.support import conformance as c
from worker import converter as wire
from worker.converter import structure
from worker.domain.images import TagEntry, build_collection, parse_entries
from worker.domain.menu import ImageCatalog
from worker.domain.policy import DropdownPolicy, filter_dropdown
from worker.domain.tags import ImageType, parse_tag
from worker.services.evaluate import evaluate

NOW = datetime(2077, 11, 1, tzinfo=UTC)


def spawner_images(view: ImageCatalog) -> Any:
    return wire.spawner_images_json(view.spawner_images())


def menu(view: ImageCatalog, policy: DropdownPolicy) -> Any:
    return wire.menu_json(view.menu_images(policy, NOW))


def plan(view: ImageCatalog) -> list[tuple[str, str]]:
    return [(r.image.tag, r.node) for r in view.prepull_plan()]


def test_standard_docker_spawner_images() -> None:
    _, result = c.run("standard", "docker", "standard", "prepull-set")
    assert spawner_images(result.view) == c.read_json("controller/images/standard.json")


def test_standard_docker_prepulls() -> None:
    cfg, result = c.run("standard", "docker", "standard", "prepull-set")
    view = result.view
    status = wire.prepuller_status_json(cfg.images, view.prepuller_images(), view.node_statuses())
    assert status == c.read_json("controller/prepuller/prepulls.json")
    # The one prepull pod the reference creates: the daily on node2.
    assert plan(view) == [("d_2077_10_23", "node2")]
    assert view.prepull_plan()[0].reference == (
        "lighthouse.ceres/library/sketchbook:d_2077_10_23@sha256:1234"
    )


def test_prepuller_status_with_selector_and_taints() -> None:
    cfg, result = c.run("prepuller", "docker", "prepuller", "prepull-set")
    view = result.view
    status = wire.prepuller_status_json(cfg.images, view.prepuller_images(), view.node_statuses())
    assert status == c.read_json("controller/prepuller/status.json")


def test_difference_5_ineligible_nodes_get_no_prepull_work() -> None:
    """DOMAIN.md difference 5: the reference would also send node6 the daily it lacks."""
    _, result = c.run("prepuller", "docker", "prepuller", "prepull-set")
    view = result.view
    assert plan(view) == [("w_2077_43", "node3"), ("d_2077_10_23", "node3")]
    node6 = next(n for n in view.node_statuses() if n.name == "node6")
    assert not node6.eligible
    assert node6.comment == "Node is tainted (NoSchedule, some-taint = other-value)"


@pytest.mark.parametrize("output", ["images", "menu"])
def test_cycle_docker(output: str) -> None:
    cfg, result = c.run("cycle", "docker-cycle", "cycle", "prepull-set")
    expected = c.read_json(f"controller/{output}/cycle.json")
    if output == "images":
        assert spawner_images(result.view) == c.without_nulls(expected)
    else:
        assert menu(result.view, cfg.dropdown_menu) == expected


@pytest.mark.parametrize("output", ["images", "menu"])
def test_cycle_artifact_registry(output: str) -> None:
    cfg, result = c.run("gar-cycle", "gar-cycle", "gar-cycle", "all")
    expected = c.read_json(f"controller/{output}/gar-cycle.json")
    if output == "images":
        assert spawner_images(result.view) == c.without_nulls(expected)
    else:
        assert menu(result.view, cfg.dropdown_menu) == expected


def test_artifact_registry_before_and_after_prepulls() -> None:
    cfg, result = c.run("gar", "gar", "empty", "all")
    view = result.view
    assert spawner_images(view) == c.without_nulls(c.read_json("controller/images/gar-before.json"))
    assert menu(view, cfg.dropdown_menu) == c.read_json("controller/menu/gar-before.json")

    # Pods go first for w_2077_43 on both nodes, then w_2077_42 (reference 7.3).
    requests = view.prepull_plan()
    assert [(r.image.tag, r.node) for r in requests] == [
        ("w_2077_43", "node1"),
        ("w_2077_43", "node2"),
        ("w_2077_42", "node1"),
        ("w_2077_42", "node2"),
    ]
    # The prepulls succeed: each node now reports the pulled digests.
    pulled: dict[str, dict[str, int | None]] = {}
    for request in requests:
        assert request.image.digest is not None
        pulled.setdefault(request.node, {})[request.image.digest] = None
    nodes = [evolve(n, digests=pulled.get(n.name, {})) for n in c.nodes("empty")]
    after = evaluate(cfg, c.entries("gar", cfg), nodes, "all").view
    assert spawner_images(after) == c.without_nulls(c.read_json("controller/images/gar-after.json"))
    assert menu(after, cfg.dropdown_menu) == c.read_json("controller/menu/gar-after.json")
    assert after.prepull_plan() == []


def test_difference_8_all_digests_resolve_every_alias() -> None:
    """DOMAIN.md difference 8: once every digest is known, unknown aliases resolve.

    The reference's Docker source shows ``latest_weekly`` and ``latest_daily`` raw and
    without digests; with the whole repository resolved they name their targets.
    """
    _, result = c.run("standard", "docker", "standard", "all")
    names = {i.tag: i for i in result.view.spawner_images().all}
    assert names["latest_weekly"].name == "Latest Weekly (Weekly 2077_43)"
    assert names["latest_weekly"].digest == "sha256:5678"
    assert names["latest_weekly"].prepulled is True
    assert names["latest_daily"].name == "Latest Daily (Daily 2077_10_23)"
    assert names["latest_daily"].prepulled is False  # node2 lacks the daily
    assert names["recommended"].aliases == ("latest_weekly", "w_2077_43")


@pytest.mark.parametrize(
    "path", sorted((c.DATA / "controller" / "rspimagetag").glob("*.json")), ids=lambda p: p.stem
)
def test_rspimagetag_fixture(path: Any) -> None:
    expected = c.read_json(f"controller/rspimagetag/{path.name}")
    parsed = parse_tag(expected["tag"])
    version = parsed.version
    got = {
        "architecture": parsed.architecture,
        "base": parsed.base,
        "build": parsed.build,
        "cycle": parsed.cycle,
        "cycle_build": parsed.cycle_build,
        "date": parsed.date.strftime("%Y-%m-%d %H:%M:%S") if parsed.date else None,
        "display_name": parsed.display_name,
        "extra": parsed.extra,
        "image_type": parsed.image_type.value,
        "semantic": parsed.semantic,
        "tag": parsed.tag,
        "version": None
        if version is None
        else {
            "build": version.build,
            "major": version.major,
            "minor": version.minor,
            "patch": version.patch,
            "prerelease": version.prerelease,
        },
    }
    assert got == expected


def _prune(tool_config: str, registry: str) -> list[str]:
    import yaml

    data = yaml.safe_load((c.DATA / "images" / tool_config).read_text())
    policy = structure(data["prune"], DropdownPolicy, camel=True)
    listing = c.read_json(f"registry/{registry}")
    if isinstance(listing, dict):
        entries = [TagEntry(t, d) for t, d in listing.items()]
    else:
        entries = [TagEntry(t, e["uri"].split("@")[1]) for e in listing for t in e["tags"]]
    images = build_collection(parse_entries(entries)).listing()
    return [i.tag for i in filter_dropdown(images, policy, NOW, invert=True)]


def test_image_tool_prune_policies() -> None:
    """``images/*.yaml``: prune = the dropdown filter inverted; aliases never pruned."""
    assert _prune("docker.yaml", "docker.json") == []
    # Weeklies dated before 2077-10-25 go; w_2077_43 is Thursday 2077-10-28.
    assert parse_tag("w_2077_43").date == datetime(2077, 10, 28, tzinfo=UTC)
    pruned = _prune("gar.yaml", "gar.json")
    assert pruned == ["w_2077_42", "w_2077_41"]
    assert all(parse_tag(t).image_type is ImageType.WEEKLY for t in pruned)
