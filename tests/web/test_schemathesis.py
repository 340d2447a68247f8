"""S6: schemathesis against the OpenAPI document, on the real server in a thread.

No 5xx, every answer matches the document, and without a login nothing changes state. Each
operation gets a few positive and negative examples (bounded so the run stays under ~30 s).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from controller.clock import SystemClock  # noqa: E402
from controller.site import Site, build_site  # noqa: E402
from controller.web.app import build_app, start_web  # noqa: E402
from controller.web.auth import Throttle  # noqa: E402
from controller.web.openapi import openapi_document  # noqa: E402
from tests.web.conftest import HDR, PINS, web_config  # noqa: E402

SEEN: list[tuple[str, str, int]] = []
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Logging out or unpairing mid-run would only turn the rest of the run into 401s.
SKIP_AUTHENTICATED = {("POST", "/api/v1/logout"), ("DELETE", "/api/v1/pair")}
SKIP_ALWAYS = {("GET", "/api/v1/rooms/{room}/ws")}  # a WebSocket, not a JSON answer


@dataclass
class Served:
    base: str
    site: Site
    loop: asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, staff_template: Path) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "staff.json").write_bytes(staff_template.read_bytes())
    config = web_config(tmp)
    ready = threading.Event()
    stop: dict[str, Any] = {}

    async def serve() -> None:
        site = build_site(config, clock=SystemClock())
        await site.start()
        # The unauthenticated run's failed logins must not throttle the authenticated run's
        # login (a flake whenever the fuzz ops after login took less than the back-off);
        # the throttle has its own tests in test_auth.py.
        app = build_app(site, config.site.web, throttle=Throttle(free=1_000_000))
        runner = await start_web(site, config.site.web, app=app)
        stop["served"] = Served(
            f"http://127.0.0.1:{runner.addresses[0][1]}", site, asyncio.get_running_loop()
        )
        stop["event"] = asyncio.Event()
        ready.set()
        await stop["event"].wait()
        await runner.cleanup()
        await site.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    served: Served = stop["served"]
    yield served
    served.loop.call_soon_threadsafe(stop["event"].set)
    thread.join(10)


def _operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(openapi_document(session_cookie="sessionctl-session"))
    return [op.ok() for op in schema.get_all_operations()]


def _room_state(served: Served) -> list[Any]:
    return [
        (r.view()["state"], r.view()["overlays"], r.view()["session"] is None)
        for r in served.site.rooms.values()
    ]


def _fuzz(
    op: Any, http: Any, base: str, mode: Any, examples: int, fixed: dict[str, str] | None = None
) -> None:
    known = {k: v for k, v in (fixed or {}).items() if "{" + k + "}" in op.path}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=known or None))
    def run(case: Any) -> None:
        if http.cookies:
            # schemathesis fills the documented session cookie with made-up values; the
            # authenticated profile sends the real one instead.
            case.cookies = dict(http.cookies)
        response = case.call(base_url=base, session=http)
        SEEN.append((case.method, case.path, response.status_code))
        case.validate_response(response, checks=CHECKS)
        assert "Traceback" not in response.text

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): negative mode has no cases.
        if mode.name != "NEGATIVE":
            raise


def test_unauthenticated_fuzzing_changes_nothing(served: Served) -> None:
    from schemathesis import GenerationMode

    before = _room_state(served)
    http = requests.Session()
    for op in _operations():
        key = (op.method.upper(), op.path)
        if key in SKIP_ALWAYS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(op, http, served.base, mode, 4)
        http.cookies.clear()
    assert _room_state(served) == before
    assert not (served.site.config.site.state_dir / "devices.json").exists()


def test_authenticated_fuzzing(served: Served) -> None:
    from schemathesis import GenerationMode

    http = requests.Session()
    r = http.post(
        f"{served.base}/api/v1/login",
        json={"staff": "nurse-1", "pin": PINS["nurse-1"]},
        headers=HDR,
    )
    assert r.status_code == 200
    for op in _operations():
        key = (op.method.upper(), op.path)
        if key in SKIP_ALWAYS | SKIP_AUTHENTICATED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(op, http, served.base, mode, 4)
        # Real rooms and scenes too, so the handlers behind the 404s are exercised.
        real = {"room": "room-1", "scene": "demo"}
        _fuzz(op, http, served.base, GenerationMode.POSITIVE, 6, real)
        assert http.get(f"{served.base}/api/v1/me").status_code == 200, key
    # The run reached the handlers, not just the login wall.
    assert sum(1 for m, p, st in SEEN if m == "POST" and "/commands/" in p and st == 200) >= 11
