"""The ``kube:`` section: what the bridge reads, strictly, and where its values go."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from worker import factory
from worker.config import ConfigError, KubeConfig
from worker.converter import parse_config

SOURCE = {"type": "docker", "registry": "registry.example.org", "repository": "sqre/lab"}


def config(**kube: Any) -> Any:
    return parse_config({"images": {"source": SOURCE}, "kube": kube})


def test_defaults() -> None:
    assert parse_config({"images": {"source": SOURCE}}).kube == KubeConfig(
        namespace="imageledger",
        inventory_interval=timedelta(minutes=5),
        image_pull_secret=None,
        kubeconfig=None,
        retry_delay=timedelta(seconds=1),
        max_retry_delay=timedelta(seconds=30),
    )


def test_the_keys_the_manifests_use() -> None:
    kube = config(namespace="lab-ops", inventoryInterval="2m", imagePullSecret="pull").kube
    assert (kube.namespace, kube.inventory_interval, kube.image_pull_secret) == (
        "lab-ops",
        timedelta(minutes=2),
        "pull",
    )


@pytest.mark.parametrize(
    ("kube", "message"),
    [
        ({"namespaces": "x"}, r"extra fields found \(namespaces\) @ \$\.kube"),
        ({"namespace": ""}, r"namespace.*@ \$\.kube"),
        ({"inventoryInterval": "0s"}, r"inventory_interval must be positive @ \$\.kube"),
        ({"retryDelay": "soon"}, r"cannot parse duration 'soon'.* @ \$\.kube\.retryDelay"),
        ({"imagePullSecret": 3}, r"@ \$\.kube\.imagePullSecret"),
    ],
)
def test_bad_kube_section_is_named(kube: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**kube)


def test_retry_delays_hold_the_bridges_requests() -> None:
    settings = factory.bridge_settings(config(retryDelay="2s", maxRetryDelay="1m"), None, "il")
    assert (settings.outage_delay, settings.max_outage_delay) == (
        timedelta(seconds=2),
        timedelta(minutes=1),
    )
    assert settings.prefix == "il"


def test_the_kubeconfig_option_wins_over_the_config_then_in_cluster() -> None:
    given = Path("/etc/kube/config")
    assert factory.kubeconfig(given, config(kubeconfig="/other")) == given
    assert factory.kubeconfig(None, config(kubeconfig="/other")) == Path("/other")
    assert factory.kubeconfig(None, config()) is None
