"""Pure parts of the registry adapter: challenges, Link, Retry-After, tokens, credentials."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from yarl import URL

from worker.adapters.registry import (
    DockerCredentialStore,
    ManifestUnknownError,
    RegistryCredentials,
    RegistryCredentialsError,
    RequestStats,
    RetryBudget,
)
from worker.adapters.registry.auth import (
    Challenge,
    TokenCache,
    TokenGrant,
    TokenKey,
    credentials_allowed_for_realm,
    parse_challenges,
    parse_token_response,
)
from worker.adapters.registry.wire import (
    is_valid_digest,
    next_link,
    parse_link_header,
    parse_retry_after,
)


def test_bearer_challenge_with_quoted_commas_and_escapes() -> None:
    header = (
        'Bearer realm="https://auth.example.org/token",service="registry.example.org",'
        'scope="repository:a/b:pull,push repository:c:pull",error="say \\"hi\\", then go"'
    )

    [challenge] = parse_challenges(header)

    assert challenge.is_scheme("bearer")
    assert dict(challenge.params) == {
        "realm": "https://auth.example.org/token",
        "service": "registry.example.org",
        "scope": "repository:a/b:pull,push repository:c:pull",
        "error": 'say "hi", then go',
    }


def test_several_challenges_in_one_header_and_token68() -> None:
    header = 'Newauth realm="apps", type=1, title="Login, \\"apps\\"", Basic realm="simple"'
    assert parse_challenges(header) == [
        Challenge("Newauth", {"realm": "apps", "type": "1", "title": 'Login, "apps"'}),
        Challenge("Basic", {"realm": "simple"}),
    ]
    assert parse_challenges("Negotiate abc+/d==, BASIC") == [
        Challenge("Negotiate", {}, "abc+/d=="),
        Challenge("BASIC", {}),
    ]
    with pytest.raises(ValueError, match="unterminated"):
        parse_challenges('Bearer realm="never closed')


def test_link_header_with_quoted_params_commas_and_several_links() -> None:
    header = (
        '</v2/a/tags/list?n=2&last=b,c>; title="x, y; z"; rel="prev", '
        '</v2/a/tags/list?n=2&last=d>; REL="first next"'
    )

    links = parse_link_header(header)

    assert [link.target for link in links] == [
        "/v2/a/tags/list?n=2&last=b,c",
        "/v2/a/tags/list?n=2&last=d",
    ]
    assert links[0].params["title"] == "x, y; z"
    assert links[1].relations == ("first", "next")
    assert next_link([header]) == "/v2/a/tags/list?n=2&last=d"
    assert (
        next_link(["<https://x/v2/a/tags/list?last=q>; rel=next"])
        == "https://x/v2/a/tags/list?last=q"
    )
    assert next_link([]) is None
    with pytest.raises(ValueError, match="start with"):
        parse_link_header("no-brackets; rel=next")


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2077, 10, 23, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Sat, 23 Oct 2077 12:00:30 GMT", now) == 30
    assert parse_retry_after("Sat, 23 Oct 2077 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_token_response_lifetime_honours_expires_in_and_issued_at() -> None:
    now = datetime(2077, 10, 23, 12, 0, 0, tzinfo=UTC).timestamp()
    body = {"token": "t", "expires_in": 300, "issued_at": "2077-10-23T11:59:00.123456789Z"}
    assert parse_token_response(json.dumps(body).encode(), now).lifetime == pytest.approx(
        240.123, abs=0.001
    )
    assert parse_token_response(b'{"access_token": "t"}', now) == TokenGrant("t", 60.0)
    skewed = {"token": "t", "expires_in": 300, "issued_at": "2077-10-24T00:00:00Z"}
    assert parse_token_response(json.dumps(skewed).encode(), now).lifetime == 300
    with pytest.raises(ValueError, match="no token"):
        parse_token_response(b'{"expires_in": 5}', now)
    assert "secret-token" not in repr(TokenGrant("secret-token", 1.0))


def test_token_cache_renews_before_expiry() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    key = TokenKey("https://auth.example.org/token", "svc", "repository:a:pull")
    cache.put(key, TokenGrant("one", 60.0))

    now[0] += 53.0
    assert cache.get(key) == "one"
    now[0] += 2.0
    assert cache.get(key) is None, "renewed 10% (at most 10 s) early"
    cache.put(key, TokenGrant("two", 60.0))
    cache.invalidate(key, "one")
    assert cache.get(key) == "two", "invalidating a stale token keeps the newer one"
    cache.invalidate(key, "two")
    assert cache.get(key) is None
    assert asyncio.Lock is type(cache.lock(key))


@pytest.mark.parametrize(
    ("realm", "insecure", "allowed"),
    [
        ("https://auth.example.org/token", False, True),
        ("http://auth.example.org/token", False, False),
        ("http://auth.example.org/token", True, True),
        ("http://127.0.0.1:5001/token", False, True),
        ("http://[::1]:5001/token", False, True),
        ("http://localhost/token", False, True),
        ("ftp://auth.example.org/token", True, False),
    ],
)
def test_credentials_go_to_https_realms_loopback_or_insecure_only(
    realm: str, insecure: bool, allowed: bool
) -> None:
    assert credentials_allowed_for_realm(URL(realm), registry_insecure=insecure) is allowed


def test_docker_config_exact_then_parent_domain_match(tmp_path: Path) -> None:
    def auth(user: str, password: str) -> str:
        return base64.b64encode(f"{user}:{password}".encode()).decode()

    config = {
        "auths": {
            "example.org": {"auth": auth("parent", "p1")},
            "https://index.docker.io/v1/": {"auth": auth("hub", "p2")},
            "ghcr.io": {"username": "fields", "password": "p3"},
            "foo.example.org": {"auth": auth("exact", "p:4")},
            "quay.io": {"identitytoken": "ignored"},
        }
    }
    path = tmp_path / ".dockerconfigjson"
    path.write_text(json.dumps(config))
    store = DockerCredentialStore.from_file(path)

    assert store.lookup("foo.example.org") == RegistryCredentials("exact", "p:4")
    assert store.lookup("bar.example.org") == RegistryCredentials("parent", "p1")
    assert store.lookup("index.docker.io") == RegistryCredentials("hub", "p2")
    assert store.lookup("ghcr.io") == RegistryCredentials("fields", "p3")
    assert store.lookup("quay.io") is None
    assert store.lookup("badexample.org") is None
    assert "p1" not in repr(store)
    assert "p3" not in repr(store.lookup("ghcr.io"))


def test_docker_config_errors_name_the_problem_not_the_secret(tmp_path: Path) -> None:
    with pytest.raises(RegistryCredentialsError, match="cannot read"):
        DockerCredentialStore.from_file(tmp_path / "missing.json")
    with pytest.raises(RegistryCredentialsError, match="not base64") as caught:
        DockerCredentialStore.from_json('{"auths": {"h": {"auth": "sekrit!!"}}}')
    assert "sekrit" not in str(caught.value)
    with pytest.raises(RegistryCredentialsError, match="no 'auths'"):
        DockerCredentialStore.from_json("{}")


def test_errors_strip_credentials_from_urls() -> None:
    error = ManifestUnknownError(
        "not found",
        method="HEAD",
        url="https://user:pw@r.example.org/v2/a/manifests/t#x",
        status=404,
    )
    assert str(error) == "not found (HEAD https://r.example.org/v2/a/manifests/t -> 404)"


def test_digest_grammar_and_stats_budget() -> None:
    assert is_valid_digest("sha256:" + "a" * 64)
    assert not is_valid_digest("sha256:" + "A" * 64)
    assert not is_valid_digest("sha256:abc")
    assert is_valid_digest("sha512:" + "0" * 128)
    stats = RequestStats(retry_budget=RetryBudget(limit=1))
    assert stats.retry_budget.try_spend()
    assert not stats.retry_budget.try_spend()
    stats.record_response("HEAD", 200, {"RateLimit-Remaining": "7"})
    stats.record_no_response("HEAD", timeout=True)
    snapshot = stats.snapshot()
    assert snapshot.total_requests == 2
    assert snapshot.count("HEAD", 200) == 1
    assert snapshot.rate_limit_headers == (("ratelimit-remaining", "7"),)
