"""The tablet UI end to end: Chromium driving the real controller on mock drivers (E1, E4, E5).

Each test uses its own room so they can share one server and stay independent.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, Request, Route, expect

from tests.browser.conftest import (
    PIN,
    ROOMS,
    STAFF,
    LiveServer,
    new_context,
    progress,
    screenshot,
    sign_in,
    start_demo,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_start_watch_progress_pause_resume_and_acknowledge(
    server: LiveServer, tablet: Page
) -> None:
    sign_in(tablet, server, room="room-1", shot="login")
    tablet.get_by_role("radio", name=re.compile("^Demo arc")).tap()
    expect(tablet.get_by_role("img", name=re.compile("Timeline of Demo arc"))).to_be_visible()
    screenshot(tablet, "scene-picker", full_page=True)
    tablet.get_by_role("button", name=re.compile("^Start Demo arc")).tap()
    pause = tablet.get_by_role("button", name="Pause")
    expect(pause).to_be_enabled()
    expect(tablet.get_by_role("heading", name="Arrival")).to_be_visible()

    # The bar ticks locally between state messages: it moves over ~2 s of real time.
    first = progress(tablet)
    tablet.wait_for_timeout(2000)
    assert progress(tablet) > first + 1.0
    assert server.view("room-1")["state"] == "running"

    pause.tap()
    resume = tablet.get_by_role("button", name="Resume")
    expect(resume).to_be_enabled()
    expect(tablet.get_by_text(re.compile(r"^Paused\."))).to_be_visible()
    assert server.view("room-1")["state"] == "paused"
    held = progress(tablet)
    tablet.wait_for_timeout(600)
    assert progress(tablet) == held
    resume.tap()
    expect(pause).to_be_enabled()
    assert server.view("room-1")["state"] == "running"

    remaining = tablet.get_by_role("timer", name="Remaining")
    tablet.get_by_role("button", name="+5 min").tap()
    expect(tablet.get_by_role("status").filter(has_text="Added 5 minutes")).to_be_visible()
    assert server.view("room-1")["session"]["length"] == 180 + 300
    expect(remaining).to_have_text(re.compile(r"^7:\d\d$"))

    # The baseline check-in comes due 5 s in: low priority, steady cyan, with a countdown.
    card = tablet.get_by_role("article", name="Baseline check")
    expect(card).to_be_visible(timeout=10000)
    expect(card).to_have_attribute("data-priority", "low")
    expect(card).to_contain_text("Escalates in")
    screenshot(tablet, "session-checkin")
    card.get_by_role("button", name=re.compile("^Acknowledge")).tap()
    # A check-in without response options is done once acknowledged.
    expect(card).to_be_hidden()
    assert not [c for c in server.view("room-1")["checkins"] if c["id"] == "baseline"]
    screenshot(tablet, "session")


def test_skip_with_confirm_medium_checkin_and_end(server: LiveServer, tablet: Page) -> None:
    sign_in(tablet, server, room="room-7")
    start_demo(tablet)
    small = tablet.evaluate(
        """() => [...document.querySelectorAll('button')]
            .filter((b) => b.offsetParent !== null)
            .map((b) => ({name: b.textContent.trim(), ...b.getBoundingClientRect().toJSON()}))
            .filter((r) => r.width < 44 || r.height < 44)"""
    )
    assert small == []  # E5: every visible touch target is at least 44 x 44 px

    skip = tablet.get_by_role("button", name="Next phase")
    skip.tap()
    dialog = tablet.get_by_role("dialog", name="Skip to the next phase?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").tap()
    expect(dialog).to_be_hidden()
    assert server.view("room-7")["session"]["phase"]["id"] == "arrival"
    for title in ("Settle", "Deep", "Return", "Discharge check"):
        expect(skip).to_be_enabled()
        skip.tap()
        dialog.get_by_role("button", name="Skip phase").tap()
        expect(tablet.get_by_role("heading", name=title, exact=True)).to_be_visible()

    # The discharge check-in is medium priority: yellow, flashing at 0.5 Hz until acknowledged.
    card = tablet.get_by_role("article", name="Clinician: ready for discharge?")
    expect(card).to_have_attribute("data-priority", "medium")
    flash = card.evaluate("(el) => getComputedStyle(el).animationDuration")
    assert flash == "2s"  # 0.5 Hz, inside IEC 60601-1-8's 0.4-0.8 Hz for medium
    rates = tablet.evaluate(
        """() => ['high due', 'low due', 'high acknowledged'].map((k) => {
            const probe = document.createElement('article');
            probe.className = 'checkin checkin-' + k;
            document.body.append(probe);
            const style = getComputedStyle(probe);
            const out = [style.animationName, style.animationDuration];
            probe.remove();
            return out;
        })"""
    )
    # High: 2 Hz (IEC 1.4-2.8 Hz); low: steady; acknowledged: steady.
    assert rates == [["flash-high", "0.5s"], ["none", "0s"], ["none", "0s"]]
    screenshot(tablet, "checkin-medium")
    card.get_by_role("button", name=re.compile("^Ready")).tap()
    expect(card).to_be_hidden()

    tablet.get_by_role("button", name="End session").tap()
    end = tablet.get_by_role("dialog", name="End this session?")
    expect(end.get_by_label(re.compile("Reason"))).to_be_hidden()  # no minimum duration
    end.get_by_role("button", name="End session").tap()
    expect(tablet.get_by_role("heading", name="Choose a scene")).to_be_visible()
    assert server.view("room-7")["state"] == "ended"


def test_ending_before_the_minimum_needs_a_reason(server: LiveServer, tablet: Page) -> None:
    sign_in(tablet, server, room="room-8")
    tablet.get_by_role("radio", name=re.compile("^Spravato")).tap()
    tablet.get_by_role("button", name=re.compile("^Start Spravato")).tap()
    tablet.get_by_role("button", name="End session").tap()
    end = tablet.get_by_role("dialog", name="End this session?")
    reason = end.get_by_label(re.compile("Reason"))
    expect(reason).to_be_visible()
    confirm = end.get_by_role("button", name="End early (override)")
    confirm.tap()  # an empty reason does not pass the form
    expect(end).to_be_visible()
    assert server.view("room-8")["state"] == "running"
    reason.select_option("transfer")
    screenshot(tablet, "end-override")
    confirm.tap()
    expect(tablet.get_by_role("heading", name="Choose a scene")).to_be_visible()
    assert server.view("room-8")["state"] in ("ended", "aborted")


def test_panic_needs_a_hold_and_staff_release(server: LiveServer, tablet: Page) -> None:
    sign_in(tablet, server, room="room-2")
    start_demo(tablet)
    panic = tablet.get_by_role("button", name="Panic", exact=True)
    panic.scroll_into_view_if_needed()
    box = panic.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    # A short press is not a panic.
    tablet.mouse.move(x, y)
    tablet.mouse.down()
    tablet.wait_for_timeout(300)
    tablet.mouse.up()
    tablet.wait_for_timeout(300)
    assert "panic" not in server.view("room-2")["overlays"]

    tablet.mouse.down()
    tablet.wait_for_timeout(700)
    expect(panic).to_have_class(re.compile("holding"))
    screenshot(tablet, "panic-holding")
    tablet.wait_for_timeout(1100)
    tablet.mouse.up()
    alarm = tablet.get_by_role("alert").filter(has_text="PANIC")
    expect(alarm).to_be_visible()
    view = server.view("room-2")
    assert "panic" in view["overlays"] and view["frozen"]
    screenshot(tablet, "panic")

    tablet.get_by_role("button", name="Release panic").tap()
    expect(alarm).to_be_hidden()
    assert "panic" not in server.view("room-2")["overlays"]
    expect(panic).to_be_visible()


def test_connection_loss_banner_and_resync(
    server: LiveServer, tablet: Page, context: BrowserContext
) -> None:
    sign_in(tablet, server, room="room-3")
    start_demo(tablet)
    banner = tablet.get_by_role("alert").filter(has_text="Connection lost")
    expect(banner).to_be_hidden()

    context.set_offline(True)
    expect(banner).to_be_visible()
    expect(tablet.get_by_role("button", name="Pause")).to_be_disabled()
    screenshot(tablet, "offline")
    # While the tablet is away, someone else pauses the room: the tablet must catch up.
    _submit(server, "room-3", "pause")
    context.set_offline(False)
    expect(banner).to_be_hidden()
    expect(tablet.get_by_role("button", name="Resume")).to_be_enabled()

    # The server side of the socket going away (service restart, proxy) is noticed too.
    sockets: list[Any] = []

    def relay(ws: Any) -> None:
        sockets.append(ws)
        ws.connect_to_server()

    tablet.route_web_socket(re.compile(r"/ws$"), relay)
    tablet.reload()
    expect(tablet.get_by_role("button", name="Resume")).to_be_enabled()
    assert sockets
    sockets[-1].close(code=1012, reason="service restart")
    expect(banner).to_be_visible()
    expect(banner).to_be_hidden(timeout=10000)
    expect(tablet.get_by_role("button", name="Resume")).to_be_enabled()


def test_another_rooms_controls_are_refused(server: LiveServer, tablet: Page) -> None:
    sign_in(tablet, server, room="room-4")
    tablet.goto(server.url + "/#/rooms/room-5")
    error = tablet.get_by_role("alert").filter(has_text="403")
    expect(error).to_be_visible()
    expect(tablet.get_by_role("button", name=re.compile("^Start"))).to_be_hidden()
    expect(tablet.get_by_role("button", name="Panic", exact=True)).to_be_hidden()
    screenshot(tablet, "refused-403")
    status = tablet.evaluate(
        """async () => (await fetch('/api/v1/rooms/room-5/commands/panic', {
            method: 'POST', credentials: 'same-origin',
            headers: {'X-Sessionctl': '1', 'Content-Type': 'application/json'},
            body: JSON.stringify({cmd_id: 'intruder-1'})})).status"""
    )
    assert status == 403
    assert "panic" not in server.view("room-5")["overlays"]


def test_double_tap_start_makes_one_session_and_retries_reuse_the_cmd_id(
    server: LiveServer, tablet: Page
) -> None:
    sign_in(tablet, server, room="room-6")
    bodies: list[dict[str, Any]] = []
    lost_once: list[bool] = []

    def lose_first_answer(route: Route, request: Request) -> None:
        bodies.append(json.loads(request.post_data or "{}"))
        response = route.fetch()  # the server does receive and carry out the command ...
        if not lost_once:
            lost_once.append(True)
            route.abort("connectionreset")  # ... but the tablet never hears back.
        else:
            route.fulfill(response=response)

    tablet.route(re.compile(r"/commands/start$"), lose_first_answer)
    tablet.get_by_role("radio", name=re.compile("^Demo arc")).tap()
    start = tablet.get_by_role("button", name=re.compile("^Start Demo arc"))
    expect(start).to_be_enabled()
    start.scroll_into_view_if_needed()
    box = start.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    tablet.touchscreen.tap(x, y)
    tablet.touchscreen.tap(x, y)
    expect(tablet.get_by_role("button", name="Pause")).to_be_enabled()
    expect(tablet.get_by_role("status").filter(has_text="Session started")).to_be_visible()
    assert len(bodies) == 2, bodies  # the first attempt and one retry, never a second intent
    assert bodies[0]["cmd_id"] == bodies[1]["cmd_id"]
    view = server.view("room-6")
    assert view["state"] == "running"
    assert server.event_kinds("room-6").count("session_started") == 1


def test_clinic_overview_lists_every_room(
    server: LiveServer, playwright: Playwright, browser: Any
) -> None:
    context = new_context(playwright, browser, "Galaxy Tab S4 landscape")
    try:
        page = context.new_page()
        sign_in(page, server, room=None)
        cards = page.get_by_role("listitem").filter(
            has=page.get_by_role("button", name=re.compile("^Open Room"))
        )
        expect(cards).to_have_count(len(ROOMS))
        # Running rooms count down locally between state messages.
        room1 = cards.filter(has=page.get_by_role("heading", name="Room 1", exact=True))
        before = room1.locator(".remaining").text_content()
        page.wait_for_timeout(1500)
        assert room1.locator(".remaining").text_content() != before
        screenshot(page, "overview-landscape")
        page.get_by_role("button", name="Open Room 1", exact=True).tap()
        expect(page.get_by_role("heading", name="Room 1", exact=True)).to_be_visible()
        screenshot(page, "room-landscape")
    finally:
        context.close()


def _submit(server: LiveServer, room: str, verb: str, **args: Any) -> None:
    from controller.commands import parse_command

    async def go() -> None:
        assert server.site is not None
        cmd = parse_command(verb, {"cmd_id": f"test-{verb}-{room}", "actor": "nurse-2", **args})
        outcome = await server.site.rooms[room].submit(cmd)
        assert outcome.accepted, outcome

    server.call(go())


def test_idle_sign_out_warning_and_timeout(server: LiveServer, tablet: Page) -> None:
    tablet.clock.install()
    sign_in(tablet, server, room=None)
    banner = tablet.get_by_role("status").filter(has_text="Signing out in")
    expect(banner).to_be_hidden()

    # 29 of the 30 idle minutes pass on the server; the tablet's next /me poll sees it.
    server.now.skip(29 * 60)
    tablet.clock.fast_forward("00:31")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(re.compile(r"Signing out in 0:[3-5]\d|1:00"))
    screenshot(tablet, "idle-warning")

    # A touch is activity: the warning goes away.
    tablet.get_by_role("heading", name="All rooms").tap()
    expect(banner).to_be_hidden()

    # Nobody touches it for the full idle time: the server ends the login, the tablet shows it.
    server.now.skip(31 * 60)
    expect(tablet.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    expect(tablet.get_by_text(re.compile("session ended|Signed out"))).to_be_visible()


def test_room_overlays_toggle_with_and_without_a_session(server: LiveServer, tablet: Page) -> None:
    sign_in(tablet, server, room="room-9")
    group = tablet.get_by_role("group", name="Room", exact=True)
    staff_entry = group.get_by_role("button", name="Staff in the room")
    calm = group.get_by_role("button", name="Calm")
    # Offered in an idle room too (staff walk in to set up), never the panic.
    expect(staff_entry).to_have_attribute("aria-pressed", "false")
    expect(group.get_by_role("button", name="Panic", exact=True)).to_have_count(0)
    staff_entry.tap()
    expect(staff_entry).to_have_attribute("aria-pressed", "true")
    assert server.view("room-9")["overlays"] == ["staff-entry"]

    start_demo(tablet)
    expect(staff_entry).to_have_attribute("aria-pressed", "true")
    calm.tap()
    expect(calm).to_have_attribute("aria-pressed", "true")
    staff_entry.tap()
    expect(staff_entry).to_have_attribute("aria-pressed", "false")
    assert server.view("room-9")["overlays"] == ["calm"]
    kinds = server.event_kinds("room-9")
    assert kinds.count("overlay_on") == 2 and kinds.count("overlay_off") == 1
    screenshot(tablet, "room-overlays", full_page=True)

    # Ending the session switches overlays off; the dialog says so.
    tablet.get_by_role("button", name="End session").tap()
    end = tablet.get_by_role("dialog", name="End this session?")
    expect(end).to_contain_text("resting light")
    expect(end).to_contain_text("Calm switches off")
    end.get_by_role("button", name="End session").tap()
    expect(tablet.get_by_role("heading", name="Choose a scene")).to_be_visible()
    expect(calm).to_have_attribute("aria-pressed", "false")
    assert server.view("room-9")["overlays"] == []


def test_signed_out_paired_tablet_can_still_panic(server: LiveServer, tablet: Page) -> None:
    sign_in(tablet, server, room="room-10")
    tablet.get_by_role("button", name="Log out").tap()
    expect(tablet.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    emergency = tablet.get_by_role("group", name="Emergency in Room 10")
    expect(emergency).to_be_visible()
    panic = emergency.get_by_role("button", name="Panic", exact=True)
    panic.scroll_into_view_if_needed()
    box = panic.bounding_box()
    assert box is not None
    tablet.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    tablet.mouse.down()  # a short press is not a panic, signed in or not
    tablet.wait_for_timeout(300)
    tablet.mouse.up()
    tablet.wait_for_timeout(300)
    assert "panic" not in server.view("room-10")["overlays"]

    tablet.mouse.down()
    tablet.wait_for_timeout(1800)
    tablet.mouse.up()
    status = emergency.get_by_role("status")
    expect(status).to_contain_text("Panic on in Room 10")
    screenshot(tablet, "signed-out-panic")
    assert "panic" in server.view("room-10")["overlays"]
    panics = [e for e in server.events.get("room-10", []) if e["kind"] == "panic"]
    assert len(panics) == 1 and str(panics[0]["actor"]).startswith("tablet:")

    # Staff sign in on the same tablet: the room shows the panic, and only they release it.
    tablet.get_by_label("Staff ID").fill(STAFF)
    for digit in PIN:
        tablet.get_by_role("button", name=digit, exact=True).tap()
    tablet.get_by_role("button", name="Sign in").tap()
    alarm = tablet.get_by_role("alert").filter(has_text="PANIC")
    expect(alarm).to_be_visible()
    tablet.get_by_role("button", name="Release panic").tap()
    expect(alarm).to_be_hidden()
    assert "panic" not in server.view("room-10")["overlays"]


def test_unpaired_signed_out_screen_offers_no_panic(server: LiveServer, tablet: Page) -> None:
    tablet.goto(server.url + "/")
    expect(tablet.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    tablet.wait_for_load_state("networkidle")
    expect(tablet.get_by_role("button", name="Panic", exact=True)).to_have_count(0)
