"""The administration API against its own OpenAPI document (schemathesis).

A running service (real embedded PostgreSQL) gets, for every operation the
document declares, requests generated from it: valid ones and ones that break
the schema (schemathesis' coverage and fuzzing phases), plus methods the path
does not have. Every answer must be no 5xx, a status the operation declares, a
body matching the schema declared for that status; invalid data is refused,
valid data is not (schemathesis' default checks). Then the same operations
without a token, with a forged one and with an agent's (401, 401, 403, whatever
the body), and bodies that are not JSON or not the operation's.

The schemas are built from `openapi_document()`, what the service serves at
`/api/openapi.json`; the first test checks the served document is that one.
(schemathesis' `from_fixture`, which could load it from the running service
instead, fails under pytest 9.) The runs are bounded and deterministic.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import given, settings
from prometheus_client import CollectorRegistry

from callcenter.agent.admin import ANY_STAFF, openapi_document
from callcenter.call_side.service import Service
from tests.agent.test_admin_sip import settings as admin_settings

DOCUMENT = openapi_document()


@dataclass(frozen=True)
class Running:
    base: str
    supervisor: dict[str, str]  # headers
    agent: dict[str, str]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One service for the module, on a loop of its own: schemathesis is synchronous."""
    tmp = tmp_path_factory.mktemp("admin-schema")
    # Standalone mode, agent a001 (first-pw) and supervisor sup (sup-pw).
    service = Service(admin_settings(tmp), registry=CollectorRegistry())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on_loop(coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    try:
        on_loop(service.start())
        base = f"http://{service.http_addresses[0]}"

        def bearer(user: str, password: str) -> dict[str, str]:
            r = requests.post(
                f"{base}/api/login", json={"user_id": user, "password": password}, timeout=10
            )
            assert r.status_code == 200
            return {"Authorization": f"Bearer {r.json()['token']}"}

        yield Running(base, bearer("sup", "sup-pw"), bearer("a001", "first-pw"))
    finally:
        on_loop(service.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _schema(**config: Any) -> Any:
    generation = {"deterministic": True, "database": "none", **config.pop("generation")}
    return schemathesis.openapi.from_dict(
        DOCUMENT, config=schemathesis.Config.from_dict({"generation": generation, **config})
    )


# Per operation: the coverage phase's cases (each field missing, of another
# type, at and past its bounds) and 25 fuzzed ones, valid and invalid.
SCHEMA = _schema(generation={"mode": "all", "max-examples": 25})
# Auth comes first: a few fuzzed requests of each kind per operation are enough.
NO_AUTH_SCHEMA = _schema(
    generation={"mode": "all", "max-examples": 8, "with-security-parameters": False},
    phases={"coverage": {"enabled": False}},
)


def test_the_service_serves_the_document_these_tests_use(running: Running) -> None:
    r = requests.get(f"{running.base}/api/openapi.json", headers=running.supervisor, timeout=10)
    assert r.status_code == 200 and r.json() == json.loads(json.dumps(DOCUMENT))


@NO_AUTH_SCHEMA.parametrize()
def test_every_operation_wants_a_supervisors_token(case: Any, running: Running) -> None:
    forged = {"Authorization": "Bearer " + "A" * 43}
    for headers, status in ((None, 401), (forged, 401), (running.agent, 403)):
        response = case.call(base_url=running.base, headers=headers)
        case.validate_response(response)  # a declared status, its documented body
        if (case.operation.path, case.method.lower()) in ANY_STAFF and headers is running.agent:
            # Open to any staff member (a complaint's intake): an agent's token is enough.
            assert response.status_code not in (401, 403), response.text
            continue
        assert response.status_code == status, (headers, response.text)
        assert isinstance(response.json()["error"], str)


@SCHEMA.parametrize()
def test_every_operation_answers_as_its_document_says(case: Any, running: Running) -> None:
    if (
        case.operation.path == "/api/admin/queues/{name}"
        and not case.meta.generation.mode.is_negative
        and isinstance(case.body, dict)
        and isinstance(case.body.get("name"), str)
    ):
        # The document cannot say that the body's name must be the URL's.
        case.path_parameters["name"] = case.body["name"]
    case.call_and_validate(base_url=running.base, headers=running.supervisor)


# Request bodies schemathesis does not send: not JSON, not UTF-8, NaN and
# infinities, huge numbers, U+0000 and lone surrogates, the right field names
# with values of any type.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_BODY_OPERATIONS = [
    (method, path, op)
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
    if "requestBody" in op
]


def _near_misses(op: dict[str, Any]) -> st.SearchStrategy[bytes]:
    name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    fields = sorted(DOCUMENT["components"]["schemas"][name]["properties"])
    return st.dictionaries(st.sampled_from(fields), _JSON, max_size=len(fields)).map(
        lambda body: json.dumps(body).encode()
    )


@pytest.mark.parametrize(
    ("method", "path", "op"), _BODY_OPERATIONS, ids=[f"{m} {p}" for m, p, _ in _BODY_OPERATIONS]
)
def test_bodies_that_are_not_json_or_not_the_operations_get_a_4xx(
    method: str, path: str, op: dict[str, Any], running: Running
) -> None:
    # An agent, a queue, a complaint and a call-back item that do not exist: what is valid changes nothing
    # (but a complaint's intake: what is valid is logged).
    url = running.base + path.format(
        agent_id="nobody",
        staff_id="nobody",
        name="no-such-queue",
        complaint_id="0",
        suggestion_id="0",
        follow_up_id="0",
        day="2026-12-31",
        item_id="0",
    )
    declared = {int(s) for s in op["responses"]}
    raw = (
        st.binary(max_size=40)
        | st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass"))
        | _JSON.map(lambda v: json.dumps(v).encode())
        | _near_misses(op)
    )

    @settings(max_examples=40, derandomize=True, database=None, deadline=None)
    @given(body=raw)
    def check(body: bytes) -> None:
        r = requests.request(
            method, url, data=body, headers={**running.supervisor,
                                             "Content-Type": "application/json"}, timeout=10,
        )  # fmt: skip
        assert r.status_code in declared and r.status_code < 500, (body, r.status_code, r.text)
        if r.status_code >= 400:
            assert isinstance(r.json()["error"], str)

    check()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"name": "q", "answer_within_rings": 3.0}', 200),  # JSON's 3.0 is 3
        (b'{"name": "q", "answer_within_rings": 3.5}', 400),
        (b'{"name": "q", "priority": "3"}', 400),  # a string is not a number
        (b'{"name": "q", "max_wait": 1e400}', 400),  # stored as null before
        (b'{"name": "q", "max_wait": Infinity}', 400),
        (b'{"name": "q", "max_wait": NaN}', 400),
        (b'{"name": "q", "group": "a\\u0000"}', 400),  # a 500 from PostgreSQL before
        (b'{"name": "q", "group": "\\ud800"}', 400),  # a lone surrogate
        (b'{"name": "q", "group": "\xff"}', 400),  # not UTF-8
        (b"", 400),
        (b"null", 400),
    ],
)
def test_numbers_json_does_not_have_and_text_postgresql_cannot_store_get_a_400(
    body: bytes, status: int, running: Running
) -> None:
    r = requests.put(
        f"{running.base}/api/admin/queues/q", data=body, headers=running.supervisor, timeout=10
    )
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["answer_within_rings"] == 3
    else:
        assert isinstance(r.json()["error"], str)
