"""AMQP URL lists: a single URL unchanged, a cluster's comma-separated URLs split in order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.adapters.broker import BrokerSettings
from worker.adapters.broker.urls import AmqpUrlError, safe_amqp_url, split_amqp_urls

SINGLE = "amqp://guest:guest@127.0.0.1:5672/"


def test_a_single_url_comes_back_unchanged() -> None:
    assert split_amqp_urls(SINGLE) == (SINGLE,)
    assert BrokerSettings(url=SINGLE).urls == (SINGLE,)
    assert BrokerSettings().urls == (SINGLE,)


def test_comma_separated_urls_keep_their_order_without_blanks_or_empty_entries() -> None:
    value = " amqp://u:p@node-1:5672/vh , amqps://u:p@node-2:5671/vh,,amqp://node-3/, "
    assert split_amqp_urls(value) == (
        "amqp://u:p@node-1:5672/vh",
        "amqps://u:p@node-2:5671/vh",
        "amqp://node-3/",
    )


def test_a_comma_inside_a_password_or_query_does_not_split_the_url() -> None:
    value = "amqp://user:pa,ss@a:5672/?heartbeat=5,amqp://user:pa,ss@b:5672/"
    assert split_amqp_urls(value) == (
        "amqp://user:pa,ss@a:5672/?heartbeat=5",
        "amqp://user:pa,ss@b:5672/",
    )


@pytest.mark.parametrize("value", ["", "   ", ",", " , ,"])
def test_a_setting_without_any_url_is_an_error(value: str) -> None:
    with pytest.raises(AmqpUrlError, match="no AMQP URL"):
        split_amqp_urls(value)
    with pytest.raises(AmqpUrlError):
        _ = BrokerSettings(url=value).urls


def test_passwords_are_masked_in_every_url_of_a_list() -> None:
    shown = safe_amqp_url("amqp://u:secret@a:1/,amqp://u:secret@b:2/,amqp://c:3/")
    assert shown == "amqp://u:***@a:1/,amqp://u:***@b:2/,amqp://c:3/"
    assert "secret" not in shown
    assert safe_amqp_url(SINGLE) == "amqp://guest:***@127.0.0.1:5672/"


hosts = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True), min_size=1, max_size=5)


@given(hosts, st.sampled_from([",", ", ", " ,", " , "]))
def test_joining_urls_with_commas_and_splitting_gives_them_back(
    names: list[str], separator: str
) -> None:
    urls = [f"amqp://guest:guest@{name}:{5670 + i}/" for i, name in enumerate(names)]
    assert split_amqp_urls(separator.join(urls)) == tuple(urls)
