"""Crash-safe resume: rebuild each room's session from the journal, drive the room to its safe
state, then continue (DESIGN.md §4, testing.md §6.3)::

    site = await start_site(config, clock=SystemClock())   # journal + rooms + resume, running
    ...
    await site.close(); site.extras["journal"].close()

or, in two steps (what ``serve`` does)::

    journal = open_journal(config)
    site = build_site(config, clock=clock, recorder=journal)
    await resume_site(site, journal)        # replaces site.start()

The rule, per room with a journalled snapshot:

- same boot id (the process crashed): the session continues where the monotonic clock says it
  is now: offset = snapshot offset + monotonic time since the snapshot;
- another boot, both readings NTP-synchronised and the wall gap in [0, ``resume_gap``): the
  session continues as if the wall gap had been running time;
- otherwise it comes back **paused** at its journalled offset and the room shows a
  high-priority "session interrupted" prompt (health note ``resume``) until staff act.

Check-ins keep their state: acknowledged ones stay acknowledged, an open one is shown again
(once: a check-in id opens at most once per session). Every room is driven to its safe state
before its loop runs; the journal records ``safe_state`` and then ``session_resumed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from controller.clock import Clock
from controller.config import Config
from controller.events import Event
from controller.journal import Journal, Saved, Stamp, open_journal, wall_ns
from controller.room import Room, RoomUpdate
from controller.scene import LoadedScene, Overlay
from controller.session import ACTIVE, Session
from controller.site import Site, build_site

log = logging.getLogger("sessionctl.resume")

Mode = Literal["continue", "wall", "paused"]

# Staff actions that answer the "session interrupted" prompt.
_ANSWERS = frozenset({"resumed", "paused", "session_ended", "hold_released", "skipped"})


@dataclass(frozen=True)
class Decision:
    """How a journalled session comes back, and the ``now`` to restore its snapshot at."""

    mode: Mode
    restore_at: float
    reason: str
    gap: float | None


def decide(saved: Stamp, now: Stamp, resume_gap: float) -> Decision:
    """testing.md §6.3: monotonic time after a crash, wall time only when both are trusted."""
    if saved.boot_id == now.boot_id and now.mono >= saved.mono:
        return Decision(
            "continue", saved.mono, "the process restarted (same boot)", now.mono - saved.mono
        )
    gap = (now.wall_ns - saved.wall_ns) / 1e9
    if saved.synced and now.synced and 0.0 <= gap < resume_gap:
        return Decision(
            "wall", now.mono - gap, "the machine restarted; both clocks synchronised", gap
        )
    if not (saved.synced and now.synced):
        why = "the machine restarted and the wall clock was not synchronised"
    elif gap < 0:
        why = "the machine restarted and the wall clock went backwards"
    else:
        why = f"the machine restarted {gap / 60:.0f} min ago, longer than the resume limit"
    return Decision("paused", now.mono, why, gap)


def restore_session(
    saved: Saved,
    scenes: Mapping[str, LoadedScene],
    *,
    roles: Iterable[str],
    overlays: Mapping[str, Overlay] | None,
    now: Stamp,
    resume_gap: float,
) -> tuple[Session, Decision]:
    """Rebuild a session from its journalled snapshot as of ``now``, per :func:`decide`."""
    decision = decide(saved.stamp, now, resume_gap)
    session = Session.restore(
        saved.data,
        scenes,
        roles=roles,
        now=decision.restore_at,
        overlays=overlays,
        paused=decision.mode == "paused",
    )
    return session, decision


@dataclass
class _Plan:
    """What to journal for one room once its safe state has been applied."""

    events: list[Event] = field(default_factory=list)
    snapshot: bool = True
    prompt: str | None = None


def _restore_room(
    room: Room,
    saved: Saved | None,
    overlays: Mapping[str, Overlay],
    now: Stamp,
    resume_gap: float,
    pending: dict[str, Any] | None,
) -> _Plan:
    plan = _Plan()
    if saved is None:
        return plan

    def restore() -> tuple[Session, Decision]:
        return restore_session(
            saved,
            room.scenes,
            roles=list(room.drivers.roles),
            overlays=overlays,
            now=now,
            resume_gap=resume_gap,
        )

    try:
        session, decision = restore()
        # Where the timeline goes on from (through phase ends and holds), worked out on a
        # throwaway copy: the real session produces its catch-up events in the room's loop.
        probe, _ = restore()
        probe.advance(now.mono)
        continues_at = round(probe.offset(now.mono), 3)
    except (KeyError, ValueError, TypeError) as exc:
        message = f"the journalled session could not be restored ({exc}); the room is safe"
        log.error("room %s: %s", room.id, message)
        plan.events.append(Event("resume_failed", {"error": str(exc), "priority": "high"}))
        plan.prompt = message
        return plan
    session.resting = room.resting
    room.session = session
    state = session.state
    was = str(saved.data.get("state"))
    if state not in ACTIVE and was not in [s.value for s in ACTIVE]:
        plan.events.append(Event("session_restored", {"state": state.value}))
        return plan
    offset = round(session.offset(decision.restore_at), 3)
    plan.events.append(
        Event(
            "session_resumed",
            {
                "mode": decision.mode,
                "state": state.value,
                "offset": offset,
                "continues_at": continues_at,
                "gap": None if decision.gap is None else round(decision.gap, 3),
                "reason": decision.reason,
            },
        )
    )
    # A running snapshot taken before the session caught up would cap its offset at the
    # phase end; the old snapshot stays valid until the room's loop journals the catch-up.
    plan.snapshot = decision.mode == "paused"
    if pending is not None and pending.get("session") == session.token and state in ACTIVE:
        # Interrupted earlier and staff have not answered yet: keep asking.
        plan.prompt = str(pending.get("message") or "Session interrupted; resume or stop.")
    if decision.mode == "paused":
        plan.prompt = (
            f"Session interrupted: {decision.reason}. It is {state.value} at "
            f"{_clock(offset)}; check the room, then resume or stop."
        )
        plan.events.append(
            Event(
                "resume_prompt",
                {
                    "priority": "high",
                    "offset": offset,
                    "state": state.value,
                    "message": plan.prompt,
                },
            )
        )
    log.warning(
        "room %s: session %s %s: journalled at %.1f s, continues at %.1f s (%s)",
        room.id,
        session.token,
        "resumed" if decision.mode != "paused" else "restored paused",
        offset,
        continues_at,
        decision.reason,
    )
    return plan


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _after_safe_state(room: Room, journal: Journal, plan: _Plan) -> Callable[[RoomUpdate], None]:
    """A listener that journals the safe state, then the resume, exactly once."""
    done = False

    def listener(update: RoomUpdate) -> None:
        nonlocal done
        if done or update.kind != "event" or update.data.get("kind") != "safe_state":
            return
        done = True
        data = {k: v for k, v in update.data.items() if k not in ("kind", "room", "wall")}
        events = [Event("safe_state", data), *plan.events]
        try:
            journal.write(room, events, snapshot=plan.snapshot)
        except Exception as exc:  # the room runs on; health says why
            log.error("room %s: journal write failed: %s", room.id, exc)
            room.note("journal", f"journal write failed: {exc}")

    return listener


def _answer_clears_prompt(room: Room) -> Callable[[RoomUpdate], None]:
    def listener(update: RoomUpdate) -> None:
        if (
            update.kind == "event"
            and update.data.get("kind") in _ANSWERS
            and "resume" in room.health_notes
        ):
            room.note("resume", None)

    return listener


async def resume_site(site: Site, journal: Journal) -> None:
    """Restore every room from the journal, apply safe states, then start the rooms' loops."""
    clock = site.clock
    now = Stamp(clock.monotonic(), wall_ns(clock.wall()), clock.boot_id(), clock.synchronized())
    saved = journal.snapshots()
    gap = site.config.site.journal.resume_gap
    for room in site.rooms.values():
        pending = journal.unanswered(room.id, "resume_prompt", sorted(_ANSWERS))
        plan = _restore_room(room, saved.get(room.id), site.library.overlays, now, gap, pending)
        for notice in journal.notices:
            plan.events.append(Event("journal_reset", {"notice": notice, "priority": "high"}))
            room.note("journal_reset", notice)
        if journal.fault is not None:
            room.note("journal", journal.fault)
        if plan.prompt is not None:
            room.note("resume", plan.prompt)
        room.add_listener(_after_safe_state(room, journal, plan))
        room.add_listener(_answer_clears_prompt(room))
    await site.start(safe_state=True)


def open_site(config: Config, *, clock: Clock, **build: object) -> Site:
    """Open the journal and build the rooms with it as their recorder (not started yet);
    ``site.extras["journal"]`` holds the journal. Start with :func:`resume_site`."""
    journal = open_journal(config, clock=clock)
    site = build_site(config, clock=clock, recorder=journal, **build)  # type: ignore[arg-type]
    site.extras["journal"] = journal
    return site


async def start_site(config: Config, *, clock: Clock, **build: object) -> Site:
    """:func:`open_site` then :func:`resume_site`: the rooms are safe, resumed and running."""
    site = open_site(config, clock=clock, **build)
    await resume_site(site, site.extras["journal"])
    return site
