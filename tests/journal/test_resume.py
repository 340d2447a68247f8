"""Resume after a crash or a reboot, and wall-clock steps (testing.md §12 T1-T4), on the real
room runtime with an injected VirtualClock and a real SQLite journal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from controller.clock import VirtualClock
from controller.commands import Command
from controller.config import Config
from controller.journal import Journal
from controller.resume import start_site
from controller.room import Room
from controller.session import SessionState
from controller.site import Site
from controller.virtualtime import run_virtual

_seq = 0


def cmd(verb: str, **args: Any) -> Command:
    global _seq
    _seq += 1
    return Command(verb, f"t{_seq}", "nurse-3", args)  # type: ignore[arg-type]


def boot(config: Config, clock: VirtualClock, body: Callable[[Room], Awaitable[Any]]) -> Any:
    """Start the site (journal, safe state, resume), run ``body`` on room-1, then stop as a
    crash would: nothing more is written."""

    async def main() -> Any:
        site: Site = await start_site(config, clock=clock)
        try:
            return await body(site.rooms["room-1"])
        finally:
            await site.close()
            site.extras["journal"].close()

    return run_virtual(main(), clock)


def rows(config: Config, clock: VirtualClock) -> list[dict[str, Any]]:
    journal = Journal.open(config.site.journal.path, clock=clock)
    try:
        return list(journal.rows())
    finally:
        journal.close()


async def start_and_run(room: Room, seconds: float) -> float:
    outcome = await room.submit(cmd("start", scene="arc"))
    assert outcome.accepted, outcome.reason
    await asyncio.sleep(seconds)
    return float(room.view()["session"]["offset"])


async def observe(room: Room) -> dict[str, Any]:
    await asyncio.sleep(0)
    return room.view()


def test_same_boot_crash_continues_at_monotonic_offset(site_config: Config) -> None:
    clock = VirtualClock()
    assert boot(site_config, clock, lambda r: start_and_run(r, 42.5)) == 42.5
    clock.advance(12.25)  # the process is dead for 12.25 s
    view = boot(site_config, clock, observe)
    assert view["state"] == "running"
    assert abs(view["session"]["offset"] - 54.75) < 1e-6
    assert view["session"]["phase"]["id"] == "deep"
    kinds = [r["kind"] for r in rows(site_config, clock)]
    resumed = kinds.index("session_resumed")
    assert kinds[resumed - 1] == "safe_state", "the safe state comes before the resume"
    assert "resume_prompt" not in kinds


def test_crash_across_phases_raises_missed_checkins_once(site_config: Config) -> None:
    clock = VirtualClock()

    async def ack_baseline(room: Room) -> None:
        await start_and_run(room, 8)
        assert (await room.submit(cmd("ack", checkin="baseline"))).accepted
        await asyncio.sleep(1)

    boot(site_config, clock, ack_baseline)
    clock.advance(100)  # dead through the comfort check-in (offset 40) and into "return"

    async def look(room: Room) -> dict[str, Any]:
        await asyncio.sleep(0.5)
        return room.view()

    view = boot(site_config, clock, look)
    assert view["session"]["phase"]["id"] == "return"
    open_ids = [c["id"] for c in view["checkins"]]
    assert open_ids == ["comfort"], "baseline stays acknowledged; comfort shown once"
    assert view["checkins"][0]["priority"] == "high", "it escalated in real time while down"
    boot(site_config, clock, look)
    due = [r["detail"]["checkin"] for r in rows(site_config, clock) if r["kind"] == "checkin_due"]
    assert sorted(due) == ["baseline", "comfort"], "no check-in prompted twice or dropped"


def test_reboot_unsynchronised_restores_paused_with_prompt(site_config: Config) -> None:
    clock = VirtualClock(synchronized=False)

    async def run(room: Room) -> float:
        offset = await start_and_run(room, 20)
        await asyncio.sleep(25)  # the comfort check-in at 40 s is the last journalled row
        return offset

    boot(site_config, clock, run)
    clock.reboot("boot-2", monotonic=7.0)
    clock.step_wall(60)
    view = boot(site_config, clock, observe)
    assert view["state"] == "paused"
    assert view["session"]["offset"] == 40.0, "the last journalled offset"
    assert "resume" in view["health"]["notes"]
    assert "Session interrupted" in view["health"]["notes"]["resume"]
    kinds = [r["kind"] for r in rows(site_config, clock)]
    assert kinds[-3:] == ["safe_state", "session_resumed", "resume_prompt"]
    prompt = [r for r in rows(site_config, clock) if r["kind"] == "resume_prompt"][-1]
    assert prompt["detail"]["priority"] == "high"

    async def staff_resume(room: Room) -> dict[str, Any]:
        assert "resume" in room.health_notes, "still asking after another restart"
        assert (await room.submit(cmd("resume"))).accepted
        await asyncio.sleep(5)
        return room.view()

    after = boot(site_config, clock, staff_resume)
    assert after["state"] == "running"
    assert after["session"]["offset"] == 45.0
    assert "resume" not in after["health"]["notes"]


def test_reboot_synchronised_within_gap_continues_by_wall_delta(site_config: Config) -> None:
    clock = VirtualClock(synchronized=True)
    boot(site_config, clock, lambda r: start_and_run(r, 10))
    clock.reboot("boot-2", monotonic=3.0)
    clock.step_wall(95)  # 95 s passed on the (synchronised) wall clock
    view = boot(site_config, clock, observe)
    assert view["state"] == "running"
    assert abs(view["session"]["offset"] - 105.0) < 1e-6
    assert "resume" not in view["health"]["notes"]


def test_reboot_synchronised_beyond_gap_or_backwards_resumes_paused(site_config: Config) -> None:
    for step in (3600.0, -120.0):
        clock = VirtualClock(synchronized=True)
        boot(site_config, clock, lambda r: start_and_run(r, 10))
        clock.reboot("boot-2")
        clock.step_wall(step)
        view = boot(site_config, clock, observe)
        assert view["state"] == "paused", step
        assert view["session"]["offset"] == 5.0, "the baseline check-in at 5 s was journalled"
        site_config.site.journal.path.unlink()


def test_reboot_with_one_unsynchronised_reading_resumes_paused(site_config: Config) -> None:
    clock = VirtualClock(synchronized=False)
    boot(site_config, clock, lambda r: start_and_run(r, 10))
    clock.reboot("boot-2")
    clock.set_synchronized(True)
    clock.step_wall(30)
    assert boot(site_config, clock, observe)["state"] == "paused"


def _wall_step_run(site_config: Config, step: float) -> tuple[dict[str, Any], list[Any]]:
    clock = VirtualClock()

    async def run(room: Room) -> dict[str, Any]:
        await start_and_run(room, 20)
        clock.step_wall(step)
        await asyncio.sleep(50)
        return room.view()

    view = boot(site_config, clock, run)
    return view, rows(site_config, clock)


def test_wall_clock_forward_3h_leaves_timeline_alone(site_config: Config) -> None:
    view, log = _wall_step_run(site_config, 3 * 3600)
    assert view["session"]["offset"] == 70.0
    assert view["session"]["phase"]["id"] == "deep"
    steps = [r for r in log if r["kind"] == "clock_step"]
    assert len(steps) == 1
    assert abs(steps[0]["detail"]["step"] - 10800) < 1e-3
    times = [r["time"] for r in log]
    assert times[-1] > "2026-01-01T12:00", "audit times follow the wall clock, flagged"


def test_wall_clock_backwards_3h_leaves_timeline_alone(site_config: Config) -> None:
    view, log = _wall_step_run(site_config, -3 * 3600)
    assert view["session"]["offset"] == 70.0
    assert view["state"] == "running", "never falsely expired"
    steps = [r for r in log if r["kind"] == "clock_step"]
    assert len(steps) == 1 and abs(steps[0]["detail"]["step"] + 10800) < 1e-3
    offsets = [r["offset"] for r in log if r["offset"] is not None]
    assert offsets == sorted(offsets), "no negative durations"


def test_wall_step_while_down_same_boot_does_not_move_timeline(site_config: Config) -> None:
    clock = VirtualClock()
    boot(site_config, clock, lambda r: start_and_run(r, 20))
    clock.advance(5)
    clock.step_wall(-3 * 3600)
    view = boot(site_config, clock, observe)
    assert view["session"]["offset"] == 25.0
    assert any(r["kind"] == "clock_step" for r in rows(site_config, clock))


def test_ended_session_and_refusals_survive_restart(site_config: Config) -> None:
    clock = VirtualClock()
    start = cmd("start", scene="arc")

    async def run(room: Room) -> None:
        assert (await room.submit(start)).accepted
        refused = await room.submit(cmd("resume"))
        assert not refused.accepted
        await asyncio.sleep(5)
        assert (await room.submit(cmd("stop"))).accepted

    boot(site_config, clock, run)

    async def again(room: Room) -> Any:
        return await room.submit(start)

    outcome = boot(site_config, clock, again)
    assert outcome.duplicate and outcome.accepted, "a retried cmd_id is not a second session"
    log = rows(site_config, clock)
    refused = [r for r in log if r["kind"] == "command_refused"]
    assert refused and refused[0]["detail"]["reason"] == "the session is not paused"
    assert refused[0]["actor"] == "nurse-3"
    assert SessionState.ABORTED.value in {r["detail"].get("state") for r in log}
