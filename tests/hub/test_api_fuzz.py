"""Schemathesis against the hub's own OpenAPI document: generated requests to every operation,
authenticated as an admin, must never produce a server error (5xx).

Cases are drawn from schemathesis' Hypothesis strategies and sent over HTTP to the hub's real
uvicorn server (schemathesis' own pytest plugin does not support this pytest version)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from edge.bus import BusConfig
from hub.auth import Role, create_user, issue_token
from hub.broker import free_port
from hub.config import ApiConfig, HubConfig
from hub.service import HubService

EXAMPLES_PER_OPERATION = 60  # x 38 operations: well over 2,000 generated cases


def _fuzz(
    operation: Any, label: str, headers: dict[str, str], calls: dict[str, int], failures: list[str]
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        calls[label] = calls.get(label, 0) + 1
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")
        case.validate_response(response, checks=[not_a_server_error])

    run()


def test_no_server_errors_on_generated_requests(tmp_path: Path) -> None:
    service = HubService(
        HubConfig(
            site="fuzz",
            database_url=f"sqlite:///{tmp_path}/hub.sqlite",
            api=ApiConfig(port=0),
            # no broker here: config pushes answer 503, which is the documented behaviour
            mqtt=BusConfig(port=free_port(), reconnect_min_s=5, reconnect_max_s=10),
        )
    )
    with service.store.engine.begin() as conn:
        create_user(conn, "fuzz-admin", "fuzzing-password-123", Role.ADMIN)
        token = issue_token(conn, "fuzz-admin", "api", "fuzz", None)[0]
    headers = {"Authorization": f"Bearer {token}"}
    service.start()
    base = f"http://127.0.0.1:{service.api_port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    calls: dict[str, int] = {}
    failures: list[str] = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"

            _fuzz(operation, label, headers, calls, failures)
    finally:
        service.stop()
    assert failures == []
    total = sum(calls.values())
    print(f"\nschemathesis: {total} generated cases over {len(calls)} operations, 0 server errors")
    assert len(calls) >= 35
    assert total >= 2000
