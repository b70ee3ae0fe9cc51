"""The spawner documents assembled from stored rows (``worker.domain.served``) equal the
catalog's own (``ImageCatalog``) for any tags, policy and nodes: the rows are those a
refresh stores (``derived.image_rows``, ``target_rows``), the nodes as the node fold keeps
them (eligibility decided when seen)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from worker import converter as wire
from worker.adapters.ledger.derived import image_rows, target_rows
from worker.config import ImagesConfig
from worker.converter import parse_config
from worker.domain.images import Repository, TagEntry, build_collection, parse_entries
from worker.domain.menu import make_view
from worker.domain.node_observation import NodeRules, node_eligibility
from worker.domain.nodes import Node, Taint, Toleration
from worker.domain.policy import PrepullPolicy, prepull_candidates
from worker.domain.served import ServedCatalog, StoredImage, StoredNode, StoredTarget

REPOSITORY = Repository("lighthouse.ceres", "library/sketchbook")
TAGS = [
    "recommended",
    "latest_weekly",
    "latest_daily",
    "w_2077_44",
    "w_2077_44-amd64",
    "w_2077_43",
    "w_2077_42",
    "d_2077_10_23",
    "d_2077_10_22",
    "d_2077_10_21-arm64",
    "r25.0.1",
    "r24.1.0",
    "exp_random",
    "recommended_amd64",
    "something_else",
    "recommended_c0045",
    "w_2077_41_c0045.001",
    "latest_weekly-arm64",
]
DIGESTS = [f"sha256:{n:04d}" for n in range(6)]
SELECTOR = {"zone": "a"}
TOLERATIONS = (Toleration(key="gpu", operator="Exists"),)

tags = st.dictionaries(st.sampled_from(TAGS), st.none() | st.sampled_from(DIGESTS), max_size=10)
policies = st.builds(
    PrepullPolicy,
    recommended_tag=st.sampled_from(["recommended", "w_2077_43", "recommended_amd64", "nope"]),
    num_releases=st.integers(0, 2),
    num_weeklies=st.integers(0, 2),
    num_dailies=st.integers(0, 2),
    pin=st.lists(st.sampled_from(TAGS), max_size=2).map(tuple),
    alias_tags=st.sampled_from([(), ("latest_weekly", "latest_daily")]),
    cycle=st.sampled_from([None, 45]),
)
nodes = st.lists(
    st.builds(
        Node,
        name=st.sampled_from(["n1", "n2", "n3", "n4"]),
        labels=st.sampled_from([{}, {"zone": "a"}, {"zone": "b"}]),
        taints=st.sampled_from([(), (Taint("gpu", "NoSchedule"),), (Taint("x", "NoSchedule"),)]),
        digests=st.dictionaries(st.sampled_from(DIGESTS), st.none() | st.integers(1, 9)),
    ),
    max_size=4,
    unique_by=lambda n: n.name,
)


def documents(images: ImagesConfig, view: Any) -> dict[str, Any]:
    return {
        "images": wire.spawner_images_json(view.spawner_images()),
        "prepulls": wire.prepuller_status_json(
            images, view.prepuller_images(), view.node_statuses()
        ),
    }


@settings(max_examples=300, deadline=None)
@given(tags=tags, policy=policies, cluster=nodes, docker=st.booleans())
def test_stored_rows_serve_what_the_catalog_shows(
    tags: dict[str, str | None], policy: PrepullPolicy, cluster: list[Node], docker: bool
) -> None:
    """``docker``: the recommended and alias tags are Alias by configuration (a Docker
    source), else parsed as any tag (a Google source)."""
    entries = [TagEntry(t, d) for t, d in tags.items()]
    aliases = policy.configured_aliases() if docker else frozenset()
    parsed = parse_entries(entries, aliases, policy.cycle)
    collection = build_collection(parsed)
    candidates = prepull_candidates([i.parsed for i in parsed], policy)
    view = make_view(REPOSITORY, collection, candidates, policy, cluster, SELECTOR, TOLERATIONS)

    rules = NodeRules(SELECTOR, TOLERATIONS)
    stored_nodes = []
    for node in cluster:
        verdict = node_eligibility(node.labels, node.taints, rules)
        stored_nodes.append(StoredNode(node.name, verdict.eligible, verdict.comment, node.digests))
    served = ServedCatalog.of(
        1,
        REPOSITORY,
        policy.recommended_tag,
        tuple(
            StoredImage(r.tag, r.digest, r.display_name, r.aliases, r.architecture, r.alias_target)
            for r in image_rows(collection)
        ),
        tuple(
            StoredTarget(r.tag, r.digest, r.reference, r.display_name, r.image_type, r.size_bytes)
            for r in target_rows(view)
        ),
        tuple(stored_nodes),
    )

    images = parse_config({"images": {"source": {"type": "docker", **_source()}}}).images
    assert documents(images, served) == documents(images, view)


def _source() -> dict[str, str]:
    return {"registry": REPOSITORY.registry, "repository": REPOSITORY.repository}
