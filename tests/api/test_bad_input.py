"""Bad input gets a 4xx with a JSON message on every /api/ endpoint, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.api.conftest import bearer, make_application
from tests.conftest import make_organisation, make_pmu, make_stream
from wams.api.views import MAX_JSON_BYTES, MAX_JSON_DEPTH, json_depth

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

HUGE = "9" * 30
NESTED = "[" * 30_000 + "]" * 30_000  # under the size limit: refused for its depth


@pytest.fixture
def app() -> dict[str, Any]:
    organisation = make_organisation()
    stream = make_stream(owner=organisation)
    pmu = make_pmu(stream=stream)
    _, token = make_application(organisation)
    return {"token": token, "pmu": pmu.pk, "stream": stream.pk}


def post(client: Client, token: str, url: str, body: bytes | str, content_type: str = "application/json") -> Any:
    return client.generic("POST", url, body, content_type=content_type, **bearer(token))


def assert_json_4xx(response: Any, *words: str) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    for word in words:
        assert word in body["error"], body["error"]
    return body


def test_json_nested_deeper_than_the_limit_is_refused(client: Client, app: dict[str, Any]) -> None:
    assert_json_4xx(post(client, app["token"], "/api/v1/subscriptions", NESTED), f"nested deeper than {MAX_JSON_DEPTH}")
    just_too_deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert_json_4xx(post(client, app["token"], "/api/v1/subscriptions", just_too_deep), "nested deeper")
    deep_enough = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert_json_4xx(post(client, app["token"], "/api/v1/subscriptions", deep_enough), "JSON object")
    url = f"/api/v1/streams/{app['stream']}/enabled"
    assert_json_4xx(post(client, app["token"], url, '{"enabled": ' + NESTED + "}"), "nested deeper")


def test_json_depth_skips_brackets_inside_strings() -> None:
    assert json_depth('{"a": "[[[[[[", "b": [1, {"c": "]]]\\"[["}]}') == 3
    assert json_depth("[]") == 1 and json_depth('"x"') == 0


def test_oversized_bodies_get_413(client: Client, app: dict[str, Any]) -> None:
    big = json.dumps({"kind": "event", "name": "x" * (MAX_JSON_BYTES + 1)})
    assert assert_json_4xx(post(client, app["token"], "/api/v1/subscriptions", big), "larger than")
    huge = b'{"enabled": true, "pad": "' + b"x" * (3 * 2**20) + b'"}'
    response = post(client, app["token"], f"/api/v1/streams/{app['stream']}/enabled", huge)
    assert response.status_code == 413 and "larger than" in response.json()["error"]


def test_non_utf8_bodies_are_refused(client: Client, app: dict[str, Any]) -> None:
    body = b'{"kind": "event", "name": "\xff\xfe"}'
    assert_json_4xx(post(client, app["token"], "/api/v1/subscriptions", body), "not UTF-8")


def test_a_lone_surrogate_escape_is_refused(client: Client, app: dict[str, Any]) -> None:
    body = b'{"kind": "event", "name": "\\ud800"}'
    assert_json_4xx(post(client, app["token"], "/api/v1/subscriptions", body), "lone surrogate")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/subscriptions/abc",
        "/api/v1/subscriptions/-1",
        "/api/v1/subscriptions/0",
        f"/api/v1/subscriptions/{HUGE}",
        "/api/v1/streams/abc/enabled",
        f"/api/v1/streams/{HUGE}/enabled",
        "/api/v1/nothing-here",
        "/api/v2/pmus",
    ],
)
def test_bad_ids_and_unknown_paths_get_a_json_404(client: Client, app: dict[str, Any], path: str) -> None:
    assert client.get(path, **bearer(app["token"])).status_code == 404
    assert_json_4xx(client.get(path, **bearer(app["token"])))


@pytest.mark.parametrize("value", ["abc", "-1", "0", HUGE, "1.5", "", "1,abc", "9" * 5000])
def test_bad_pmu_ids_in_parameters_get_400(client: Client, app: dict[str, Any], value: str) -> None:
    assert_json_4xx(client.get("/api/v1/data", {"pmu": value}, **bearer(app["token"])))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"kind": "earthquake"}, ("unknown kind", "under_frequency")),
        ({"state": "exploded"}, ("unknown state", "raised")),
        ({"kind": "rocof,nope"}, ("unknown kind",)),
        ({"limit": "0"}, ("limit",)),
        ({"limit": HUGE}, ("limit",)),
        ({"limit": "ten"}, ("limit",)),
    ],
)
def test_unknown_filter_values_get_400(client: Client, app: dict[str, Any], params: dict[str, str], words: Any) -> None:
    assert_json_4xx(client.get("/api/v1/events", params, **bearer(app["token"])), *words)


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "1e400",
        "nan",
        "-5",
        "2026-13-01T00:00:00Z",
        "2026-01-01T12:00:00",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "2026-01-01T25:00:00Z",
    ],
)
def test_bad_times_get_400(client: Client, app: dict[str, Any], value: str) -> None:
    assert_json_4xx(client.get("/api/v1/events", {"since": value}, **bearer(app["token"])), "since")
    data = client.get("/api/v1/data", {"pmu": str(app["pmu"]), "start": value}, **bearer(app["token"]))
    assert_json_4xx(data, "start")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": 1, "webhook_url": "http://x/"}, ("kind",)),
        ({"kind": ["event"], "webhook_url": "http://x/"}, ("kind",)),
        ({"kind": {"a": 1}, "webhook_url": "http://x/"}, ("kind",)),
        ({"kind": "event", "webhook_url": 5}, ("webhook_url",)),
        ({"kind": "event", "webhook_url": ["http://x/"]}, ("webhook_url",)),
        ({"kind": "event", "webhook_url": "http://x/", "pmus": "1"}, ("pmus",)),
        ({"kind": "event", "webhook_url": "http://x/", "pmus": [True]}, ("pmus",)),
        ({"kind": "event", "webhook_url": "http://x/", "pmus": [1.5]}, ("pmus",)),
        ({"kind": "event", "webhook_url": "http://x/", "name": 7}, ("name",)),
        ({"kind": "event", "webhook_url": "http://x/", "event_kinds": [1]}, ("event_kinds",)),
        ({"kind": "event", "webhook_url": "http://x/", "event_kinds": "rocof"}, ("event_kinds",)),
        ({"kind": "event", "webhook_url": "http://x/", "min_severity": []}, ("min_severity",)),
        ({"kind": "event", "webhook_url": "http://x/", "min_severity": {}}, ("min_severity",)),
        ({"kind": "periodic", "webhook_url": "http://x/", "period_s": "60"}, ("period_s",)),
        ({"kind": "periodic", "webhook_url": "http://x/", "period_s": True}, ("period_s",)),
        ({"kind": "periodic", "webhook_url": "http://x/", "period_s": 1e400}, ("period_s",)),
        ({"kind": "periodic", "webhook_url": "http://x/", "period_s": 60, "quantities": "f"}, ("quantities",)),
        ({"kind": "periodic", "webhook_url": "http://x/", "period_s": 60, "quantities": [{"a": 1}]}, ("quantities",)),
        ({"kind": "periodic", "webhook_url": "http://x/", "period_s": 60, "quantities": ["nope"]}, ()),
        (None, ("JSON object",)),
        ("event", ("JSON object",)),
        (3.5, ("JSON object",)),
    ],
)
def test_wrong_json_types_in_subscriptions_get_400(
    client: Client, app: dict[str, Any], body: Any, words: tuple[str, ...]
) -> None:
    assert_json_4xx(post(client, app["token"], "/api/v1/subscriptions", json.dumps(body)), *words)


def test_stream_switch_refuses_wrong_types(client: Client, app: dict[str, Any]) -> None:
    url = f"/api/v1/streams/{app['stream']}/enabled"
    for body in ({"enabled": "no"}, {"enabled": 0}, {"enabled": None}, [True], "true", {}):
        assert_json_4xx(post(client, app["token"], url, json.dumps(body)), "enabled")


# Every endpoint gets every kind of garbage ------------------------------------------------------

ENDPOINTS = [
    ("GET", "/api/v1/pmus"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/data"),
    ("GET", "/api/v1/subscriptions"),
    ("POST", "/api/v1/subscriptions"),
    ("GET", "/api/v1/subscriptions/{missing}"),
    ("DELETE", "/api/v1/subscriptions/{missing}"),
    ("POST", "/api/v1/fault-records"),
    ("POST", "/api/v1/streams/{stream}/enabled"),
    ("PUT", "/api/v1/pmus"),
]

GARBAGE: list[tuple[str, dict[str, Any]]] = [
    ("nested JSON", {"data": NESTED, "content_type": "application/json"}),
    ("oversized JSON", {"data": b"[" + b"1," * 2_000_000 + b"1]", "content_type": "application/json"}),
    ("non-UTF-8 JSON", {"data": b"\xff\xfe\x00{", "content_type": "application/json"}),
    ("truncated JSON", {"data": b'{"kind": ', "content_type": "application/json"}),
    ("JSON of the wrong type", {"data": b"[1, 2, 3]", "content_type": "application/json"}),
    ("a form instead of JSON", {"data": b"kind=event", "content_type": "application/x-www-form-urlencoded"}),
    ("broken multipart", {"data": b"--x\r\nnonsense", "content_type": "multipart/form-data; boundary=x"}),
    ("multipart without boundary", {"data": b"abc", "content_type": "multipart/form-data"}),
    ("bad query values", {"query": "pmu=-1&kind=%FF%FE&state=%00&since=never&start=x&limit=1e9&max_points=-3"}),
    ("non-UTF-8 query", {"query": "pmu=%FF&quantity=%C3%28&since=%E0%80%80"}),
    ("huge query id", {"query": f"pmu={HUGE}&limit={HUGE}"}),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(("label", "request_kwargs"), GARBAGE, ids=[label for label, _ in GARBAGE])
def test_no_garbage_gets_a_500_from_any_endpoint(
    client: Client, app: dict[str, Any], method: str, path: str, label: str, request_kwargs: dict[str, Any]
) -> None:
    url = path.format(missing=424242, stream=app["stream"])
    if "query" in request_kwargs:
        url += "?" + request_kwargs["query"]
    response = client.generic(
        method,
        url,
        request_kwargs.get("data", b""),
        content_type=request_kwargs.get("content_type", "application/octet-stream"),
        **bearer(app["token"]),
    )
    assert response.status_code < 500, (label, response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), (label, response.content[:300])
        assert response.json()["error"], label
