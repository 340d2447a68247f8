"""The tablet under stress: a crowded screen, open dialogs, hung requests, no network, and
replies arriving out of order. Chromium drives the real controller on mock drivers.

Each test uses its own room (room-11 and up) so they can share one server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import (
    BrowserContext,
    Locator,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)

from tests.browser.conftest import LiveServer, screenshot, sign_in, start_demo

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LANDSCAPE: ViewportSize = {"width": 1138, "height": 712}  # the Galaxy Tab S4 sideways


def _in_viewport(page: Page, target: Locator) -> None:
    """``target`` lies wholly inside the viewport as the page stands, and nothing covers it."""
    box = target.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (box, size)
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"], (box, size)
    on_top = target.evaluate(
        """(el) => {
            const r = el.getBoundingClientRect();
            return el.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
        }"""
    )
    assert on_top, "something is drawn over it"


def _hold(page: Page, target: Locator, ms: int = 1800) -> None:
    box = target.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(ms)
    page.mouse.up()


def _until(page: Page, done: Callable[[], bool], limit_ms: int = 5000) -> None:
    """Let Playwright dispatch events (route handlers run then) until ``done()``."""
    for _ in range(limit_ms // 50):
        if done():
            return
        page.wait_for_timeout(50)
    raise AssertionError("condition not reached")


def _commands(page: Page, verb: str, hold_first: bool) -> tuple[list[dict[str, Any]], list[Route]]:
    """Record each POST of ``verb``; with ``hold_first`` the first attempt never gets an answer."""
    bodies: list[dict[str, Any]] = []
    held: list[Route] = []

    def handle(route: Route, request: Request) -> None:
        bodies.append(json.loads(request.post_data or "{}"))
        if hold_first and not held:
            held.append(route)  # a dead connection after a Wi-Fi roam: no error, no answer
        else:
            route.continue_()

    page.route(re.compile(rf"/commands/{verb}$"), handle)
    return bodies, held


def test_panic_stays_in_view_over_three_checkins_and_works_over_a_dialog(
    server: LiveServer, tablet: Page
) -> None:
    sign_in(tablet, server, room="room-11")
    tablet.get_by_role("radio", name=re.compile("^Busy check-ins")).tap()
    tablet.get_by_role("button", name=re.compile("^Start Busy check-ins")).tap()
    expect(tablet.get_by_role("article")).to_have_count(3)
    tablet.evaluate("window.scrollTo(0, 0)")  # tapping Start scrolled the long scene list
    panic = tablet.get_by_role("button", name="Panic", exact=True)
    _in_viewport(tablet, panic)
    # The toast sits above the safety bar, never over the panic.
    toast = tablet.get_by_role("status").filter(has_text="Session started")
    expect(toast).to_be_visible()
    toast_box, panic_box = toast.bounding_box(), panic.bounding_box()
    assert toast_box is not None and panic_box is not None
    assert toast_box["y"] + toast_box["height"] <= panic_box["y"]
    # Scrolled to the end, the last control still clears the bar.
    tablet.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    last = tablet.get_by_role("button", name="Calm")
    last_box = last.bounding_box()
    assert last_box is not None and last_box["y"] + last_box["height"] <= panic_box["y"]
    tablet.evaluate("window.scrollTo(0, 0)")
    screenshot(tablet, "busy-checkins")

    tablet.get_by_role("button", name="End session").tap()
    end = tablet.get_by_role("dialog", name="End this session?")
    expect(end).to_be_visible()
    _in_viewport(tablet, panic)
    screenshot(tablet, "busy-end-dialog")
    _hold(tablet, panic)
    expect(tablet.get_by_role("alert").filter(has_text="PANIC")).to_be_visible()
    expect(end).to_be_hidden()  # dismissed, and its action not taken
    view = server.view("room-11")
    assert "panic" in view["overlays"] and view["state"] == "running"

    tablet.set_viewport_size(LANDSCAPE)
    release = tablet.get_by_role("button", name="Release panic")
    _in_viewport(tablet, release)
    release.tap()
    _in_viewport(tablet, panic)
    screenshot(tablet, "busy-checkins-landscape")


def test_a_hung_command_is_retried_with_its_cmd_id_and_panic_stays_usable(
    server: LiveServer, tablet: Page
) -> None:
    tablet.clock.install()  # so the 5 s request timeout can be skipped, not waited for
    sign_in(tablet, server, room="room-12")
    start_demo(tablet)
    panic = tablet.get_by_role("button", name="Panic", exact=True)
    pauses, held = _commands(tablet, "pause", hold_first=True)
    pause = tablet.get_by_role("button", name="Pause")
    pause.tap()
    expect(pause).to_have_attribute("aria-busy", "true")
    expect(panic).to_be_enabled()
    assert len(pauses) == 1
    tablet.clock.fast_forward(6000)
    expect(tablet.get_by_role("button", name="Resume")).to_be_enabled()
    assert len(pauses) == 2 and pauses[0]["cmd_id"] == pauses[1]["cmd_id"], pauses
    assert server.view("room-12")["state"] == "paused"

    # The panic's own first attempt hangs too: it stays pressable and gets through.
    panics, _ = _commands(tablet, "panic", hold_first=True)
    _hold(tablet, panic)
    expect(panic).to_have_attribute("aria-busy", "true")
    expect(panic).to_be_enabled()
    tablet.clock.fast_forward(6000)
    expect(tablet.get_by_role("alert").filter(has_text="PANIC")).to_be_visible()
    assert len(panics) == 2 and panics[0]["cmd_id"] == panics[1]["cmd_id"], panics
    assert "panic" in server.view("room-12")["overlays"]
    for route in held:
        route.abort()


def test_a_room_opened_without_network_keeps_panic_and_recovers(
    server: LiveServer, tablet: Page, context: BrowserContext
) -> None:
    sign_in(tablet, server, room="room-13")
    tablet.evaluate("location.hash = '#/pair'")
    expect(tablet.get_by_role("heading", name="Which room is this tablet in?")).to_be_visible()
    context.set_offline(True)
    tablet.evaluate("location.hash = '#/rooms/room-13'")
    error = tablet.get_by_role("alert").filter(has_text="No connection to the controller")
    expect(error).to_be_visible()
    expect(tablet.get_by_text(re.compile("Not allowed"))).to_have_count(0)
    panic = tablet.get_by_role("button", name="Panic", exact=True)
    expect(panic).to_be_enabled()
    _in_viewport(tablet, panic)
    screenshot(tablet, "room-open-offline")
    context.set_offline(False)
    expect(tablet.get_by_text("Live", exact=True)).to_be_visible()
    expect(tablet.get_by_role("heading", name="Choose a scene")).to_be_visible()
    expect(error).to_be_hidden()

    # Reloaded while the controller cannot be reached: the sign-in screen, still with the
    # room's panic, and the room again once the controller answers.
    def lost(route: Route) -> None:
        route.abort("connectionrefused")

    for path in ("/api/v1/me", "/api/v1/device"):
        tablet.route(f"**{path}", lost)
    tablet.reload()
    unreachable = tablet.get_by_role("alert").filter(has_text="Cannot reach the controller")
    expect(unreachable).to_be_visible()
    login_panic = tablet.get_by_role("group", name="Emergency in Room 13").get_by_role(
        "button", name="Panic", exact=True
    )
    expect(login_panic).to_be_visible()
    _in_viewport(tablet, login_panic)
    screenshot(tablet, "start-unreachable")
    tablet.unroute_all()
    expect(tablet.get_by_role("heading", name="Choose a scene")).to_be_visible()
    expect(tablet.get_by_text("Live", exact=True)).to_be_visible()
    expect(unreachable).to_be_hidden()


def test_an_older_http_view_never_replaces_a_newer_pushed_one(
    server: LiveServer, tablet: Page
) -> None:
    sign_in(tablet, server, room="room-14")
    start_demo(tablet)
    stale: list[tuple[Route, Any]] = []

    def hold_reply(route: Route, request: Request) -> None:
        if request.method != "GET" or stale:
            route.fallback()
            return
        stale.append((route, route.fetch()))  # the state as it is now, delivered later

    tablet.route(re.compile(r"/api/v1/rooms/room-14$"), hold_reply)
    # A command's outcome makes the tablet fetch the room's view over HTTP.
    tablet.get_by_role("button", name="+5 min").tap()
    expect(tablet.get_by_role("status").filter(has_text="Added 5 minutes")).to_be_visible()
    _until(tablet, lambda: bool(stale))
    route, reply = stale[0]
    old = reply.json()
    assert old["state"] == "running"

    _submit_pause(server, "room-14")  # pushed over the WebSocket with a newer rev
    resume = tablet.get_by_role("button", name="Resume")
    expect(resume).to_be_enabled()
    screen = tablet.locator("#screen-room")
    expect(screen).to_have_attribute("data-rev", re.compile(r"\d+"))
    assert int(screen.get_attribute("data-rev") or 0) > old["rev"]

    route.fulfill(response=reply)
    expect(screen).to_have_attribute("data-outdated-dropped", "1")
    expect(resume).to_be_enabled()
    expect(tablet.get_by_text(re.compile(r"^Paused\."))).to_be_visible()
    tablet.unroute_all()


def _submit_pause(server: LiveServer, room: str) -> None:
    from controller.commands import parse_command

    async def go() -> None:
        assert server.site is not None
        cmd = parse_command("pause", {"cmd_id": f"test-pause-{room}", "actor": "nurse-2"})
        outcome = await server.site.rooms[room].submit(cmd)
        assert outcome.accepted, outcome

    server.call(go())
