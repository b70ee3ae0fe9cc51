"""Configuration: the reference's YAML accepted as written, bad input named by key path."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.conformance import DATA
from worker.config import ConfigError, DockerSource, GoogleSource
from worker.converter import load_config, parse_config
from worker.domain.durations import format_duration, parse_duration
from worker.domain.nodes import Toleration

SOURCE = {"type": "docker", "registry": "lighthouse.ceres", "repository": "library/sketchbook"}


def test_reference_controller_config_loads() -> None:
    config = load_config(DATA / "controller" / "config-standard.yaml")
    assert config.images.source == DockerSource("library/sketchbook", "lighthouse.ceres")
    assert config.images.refresh_interval == timedelta(minutes=5)
    assert config.lab.node_selector == {"some-label": "some-value"}
    assert config.lab.tolerations[1] == Toleration(key="other-toleration", operator="Exists")
    assert config.lab.tolerations[0].toleration_seconds == 60


def test_google_source_and_cycle() -> None:
    config = load_config(DATA / "controller" / "config-gar-cycle.yaml")
    assert isinstance(config.images.source, GoogleSource)
    assert str(config.images.repository) == (
        "us-central1-docker.pkg.dev/lighthouse-71ec/library/sketchbook"
    )
    assert config.images.policy().cycle == 50


def test_google_sources_ignore_alias_tags() -> None:
    source = {"type": "google", "location": "l", "projectId": "p", "repository": "r", "image": "i"}
    config = parse_config({"images": {"source": source, "aliasTags": ["latest"]}})
    assert config.images.policy().alias_tags == ()


def test_durations_and_dropdown_menu() -> None:
    config = parse_config(
        {
            "images": {"source": SOURCE, "refreshInterval": "1h30m", "prepullTimeout": 900},
            "dropdownMenu": {
                "weekly": {"age": "2w", "number": 3, "cutoffDate": "2021-05-31"},
                "release": {"cutoffVersion": "27.0.0", "cutoffBuild": 2600},
            },
        }
    )
    assert config.images.refresh_interval == timedelta(hours=1, minutes=30)
    assert config.images.prepull_timeout == timedelta(minutes=15)
    assert config.dropdown_menu.weekly.age == timedelta(weeks=2)
    assert config.dropdown_menu.weekly.cutoff_date == datetime(2021, 5, 31, tzinfo=UTC)
    assert config.dropdown_menu.release.cutoff_build == 2600


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ({"numWeekly": 2}, r"extra fields found \(numWeekly\) @ \$\.images$"),
        ({"numWeeklies": "2"}, r"expected an integer, got str @ \$\.images\.numWeeklies"),
        ({"numWeeklies": True}, r"expected an integer, got bool @ \$\.images\.numWeeklies"),
        ({"refreshInterval": "5 fortnights"}, r"unknown unit 'fortnights'.*\.refreshInterval"),
        ({"pin": "w_2077_43"}, r"expected a list of strings @ \$\.images\.pin"),
        ({"numDailies": -1}, r"num_dailies.*must be >= 0"),
        ({"refreshInterval": "0s"}, r"refresh_interval must be positive"),
    ],
)
def test_bad_images_section(images: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"images": {"source": SOURCE, **images}})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"images": {"source": {"type": "quay", "repository": "x"}}}, r"unknown source type"),
        ({"images": {"source": {"type": "docker"}}}, r"missing @ \$\.images\.source\.repository"),
        (
            {"images": {"source": SOURCE}, "dropdownMenu": {"weekly": {"nmber": 3}}},
            r"extra fields found \(nmber\) @ \$\.dropdownMenu\.weekly",
        ),
        (
            {"images": {"source": SOURCE}, "lab": {"tolerations": [{"tolerationSecond": 1}]}},
            r"@ \$\.lab\.tolerations\[0\]",
        ),
        ({"lab": {}}, r"missing required section 'images'"),
        (
            {"images": {"source": {"type": "docker", "repository": "../../x"}}},
            r"^invalid configuration: repository: '\.\./\.\./x' is not a repository path .*"
            r" @ \$\.images\.source$",
        ),
        (
            {"images": {"source": {"type": "docker", "repository": "a/b", "registry": "a b"}}},
            r"registry: 'a b' is not a registry host \(host or host:port\) @ \$\.images\.source$",
        ),
        (
            {
                "images": {
                    "source": {
                        "type": "google",
                        "location": "us-central1",
                        "projectId": "p",
                        "repository": "R",
                        "image": "lab",
                    }
                }
            },
            r"location, projectId, repository and image: 'p/R/lab' is not a repository path",
        ),
        (
            {"images": {"source": SOURCE}, "lab": {"nodeSelector": {"zz": 1, "a.b/c_d": 2}}},
            r"expected a string, got int @ \$\.lab\.nodeSelector\['zz'\]; expected a string,"
            r" got int @ \$\.lab\.nodeSelector\['a\.b/c_d'\]$",
        ),
        (["images"], r"expected a mapping"),
    ],
)
def test_bad_documents(document: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(document)


def test_other_controller_keys_are_ignored() -> None:
    config = parse_config(
        {"images": {"source": SOURCE}, "logLevel": "DEBUG", "lab": {"sizes": [], "env": {}}}
    )
    assert config.lab.node_selector == {}


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("images: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("2w", 1209600), ("1h30m", 5400), ("1h 30m", 5400), ("90s", 90),
     ("300", 300), ("1d12h", 129600), ("00:10:00", 600), ("2 weeks", 1209600)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "5m garbage", "-5m", "99999999999d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(timedelta(days=8, seconds=3661)) == "1w1d1h1m1s"
    assert format_duration(timedelta(0)) == "0s"


def test_queue_section_reaches_the_broker_settings() -> None:
    from worker.factory import broker_settings

    config = parse_config(
        {
            "images": {"source": SOURCE},
            "queue": {"batchSize": 500, "batchTimeout": "250ms", "maxAttempts": 3,
                      "retryDelay": "10s", "maxRetryDelay": "10m", "prefetch": 1000,
                      "deliveryLimit": 7},
        }
    )  # fmt: skip
    settings = broker_settings(config, "amqp://guest:guest@127.0.0.1/", "il")
    assert (settings.url, settings.prefix) == ("amqp://guest:guest@127.0.0.1/", "il")
    assert settings.batch_size == 500
    assert settings.batch_timeout == timedelta(milliseconds=250)
    assert (settings.max_attempts, settings.prefetch, settings.delivery_limit) == (3, 1000, 7)
    assert (settings.retry_delay, settings.max_retry_delay) == (
        timedelta(seconds=10),
        timedelta(minutes=10),
    )


def test_queue_defaults_match_the_broker_defaults() -> None:
    from worker.adapters.broker.connection import BrokerSettings
    from worker.factory import broker_settings

    config = parse_config({"images": {"source": SOURCE}})
    assert broker_settings(config, BrokerSettings().url, "imageledger") == BrokerSettings()


def test_max_clock_skew() -> None:
    assert parse_config({"images": {"source": SOURCE}}).queue.max_clock_skew == timedelta(minutes=5)
    config = parse_config({"images": {"source": SOURCE}, "queue": {"maxClockSkew": "90s"}})
    assert config.queue.max_clock_skew == timedelta(seconds=90)
    with pytest.raises(ConfigError, match="max_clock_skew must be positive"):
        parse_config({"images": {"source": SOURCE}, "queue": {"maxClockSkew": 0}})


def test_http_section() -> None:
    default = parse_config({"images": {"source": SOURCE}}).http
    assert (default.resolve_cache_ttl, default.resolve_heads_per_minute) == (
        timedelta(seconds=30),
        60,
    )
    config = parse_config(
        {"images": {"source": SOURCE},
         "http": {"resolveCacheTtl": "2m", "resolveHeadsPerMinute": 5}}
    )  # fmt: skip
    assert (config.http.resolve_cache_ttl, config.http.resolve_heads_per_minute) == (
        timedelta(minutes=2),
        5,
    )
    with pytest.raises(ConfigError, match=r"resolve_heads_per_minute.*must be >= 1"):
        parse_config({"images": {"source": SOURCE}, "http": {"resolveHeadsPerMinute": 0}})
    with pytest.raises(ConfigError, match=r"extra fields found \(token\) @ \$\.http"):
        parse_config({"images": {"source": SOURCE}, "http": {"token": "x"}})


def test_bad_queue_section_is_named() -> None:
    with pytest.raises(ConfigError, match=r"extra fields found \(batch\) @ \$\.queue"):
        parse_config({"images": {"source": SOURCE}, "queue": {"batch": 5}})


def test_the_source_examples_of_docs_registry_md_are_valid() -> None:
    """Each YAML block of docs/registry.md is a configuration that loads (both sources)."""
    doc = Path(__file__).resolve().parents[3] / "docs" / "registry.md"
    blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)
    sources = [parse_config(yaml.safe_load(block)).images.source for block in blocks]
    assert [type(s) for s in sources] == [DockerSource, GoogleSource]
    google = sources[1]
    assert isinstance(google, GoogleSource)
    assert google.docker_host == ("us-central1-docker.pkg.dev", False)
    assert str(parse_config(yaml.safe_load(blocks[1])).images.repository) == (
        "us-central1-docker.pkg.dev/rubin-shared-services-71ec/sciplat/sciplat-lab"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [("endpoint", "ftp://example.com"), ("endpoint", "https://h/v1"), ("dockerEndpoint", "h:5")],
)
def test_google_endpoints_must_be_http_origins(key: str, value: str) -> None:
    source = {"type": "google", "location": "l", "projectId": "p", "repository": "r", "image": "i"}
    with pytest.raises(ConfigError, match="expected http"):
        parse_config({"images": {"source": {**source, key: value}}})
