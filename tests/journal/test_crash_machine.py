"""The lead's session state machine (tests/core/test_session_machine.py) with a journal under
it and two more rules: ``crash_and_recover`` rebuilds the session from the journal alone (same
boot), ``reboot_and_recover`` does it after a reboot. Every invariant of the base machine still
holds, and a recovered session is indistinguishable from the one that crashed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis.stateful import rule

from controller.commands import Command
from controller.events import Event
from controller.journal import Journal, Stamp, wall_ns
from controller.resume import restore_session
from controller.session import Result, Session, SessionState
from tests.core.test_session_machine import SCENE, SessionMachine

ROLES = ["ambient", "accent"]
SCENES = {"machine": SCENE}


class _Clock:
    """The machine's float clock as a :class:`controller.clock.Clock`."""

    max_wait = float("inf")

    def __init__(self, machine: JournalMachine) -> None:
        self.machine = machine
        self.boot = "boot-1"

    def monotonic(self) -> float:
        return self.machine.now

    def wall(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.machine.now)

    def synchronized(self) -> bool:
        return False

    def boot_id(self) -> str:
        return self.boot


class JournalledSession(Session):
    """A session whose every command and transition is journalled, as Room does it."""

    journal: Journal | None = None
    _busy = False

    @property
    def id(self) -> str:
        return self.room

    @property
    def session(self) -> Session:
        return self

    def handle(self, command: Command, now: float) -> Result:
        self._busy = True
        try:
            result = super().handle(command, now)
        finally:
            self._busy = False
        if self.journal is not None:
            self.journal.record(self, result.events, command=command, outcome=result.outcome)
        return result

    def advance(self, now: float) -> list[Event]:
        events = super().advance(now)
        if events and self.journal is not None and not self._busy:
            self.journal.record(self, events)
        return events


def _close(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        assert abs(a - b) <= 2e-3, f"{path}: {a} != {b}"
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        assert set(a) == set(b), f"{path}: {sorted(a)} != {sorted(b)}"
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


class JournalMachine(SessionMachine):
    def __init__(self) -> None:
        super().__init__()
        # On tmpfs when there is one: this machine checks logic; the kill loop checks that
        # replies wait for the write (power-loss durability rests on synchronous=FULL).
        shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
        self.folder = Path(tempfile.mkdtemp(prefix="crash-machine-", dir=shm))
        self.path = self.folder / "journal.sqlite3"
        self.clock = _Clock(self)
        self.journal = Journal.open(self.path, clock=self.clock)
        self.session = self._fresh()
        self.recoveries = 0

    def _fresh(self) -> JournalledSession:
        session = JournalledSession("room", SCENES, roles=ROLES, overlays=SCENE.overlays)
        session.journal = self.journal
        return session

    def _reopen(self) -> tuple[JournalledSession | None, Any]:
        """Drop everything in memory; rebuild the session from the journal file alone."""
        old = self.session
        assert isinstance(old, JournalledSession)
        old.journal = None
        self.journal.close()
        self.journal = Journal.open(self.path, clock=self.clock)
        assert self.journal.fault is None and self.journal.notices == []
        assert self.journal.quick_check() == "ok"
        saved = self.journal.snapshots().get("room")
        if saved is None:
            assert old.state == SessionState.READY and not self.sent, "a command was lost"
            return self._fresh(), None
        stamp = Stamp(self.now, wall_ns(self.clock.wall()), self.clock.boot, False)
        restored, decision = restore_session(
            saved, SCENES, roles=ROLES, overlays=SCENE.overlays, now=stamp, resume_gap=900
        )
        restored.__class__ = JournalledSession  # the same object, now journalled again
        assert isinstance(restored, JournalledSession)
        restored.journal = self.journal
        return restored, decision

    @rule()
    def crash_and_recover(self) -> None:
        old = self.session
        restored, decision = self._reopen()
        assert restored is not None
        self.recoveries += 1
        if decision is not None:
            assert decision.mode == "continue"
        # Both catch up to now: the journalled one must see exactly what the lost one would.
        lost = Session.advance(old, self.now)
        caught_up = restored.advance(self.now)
        assert [e.as_dict() for e in caught_up] == [e.as_dict() for e in lost]
        self._count(caught_up)
        _close(old.view(self.now), restored.view(self.now), "view")
        _close(old.snapshot(self.now)["outcomes"], restored.snapshot(self.now)["outcomes"])
        if not old.blending:
            assert old.desired(self.now) == restored.desired(self.now)
        self.session = restored
        self._track_offset()

    @rule()
    def reboot_and_recover(self) -> None:
        self.clock.boot = f"boot-{self.recoveries + 2}"
        old = self.session
        restored, decision = self._reopen()
        assert restored is not None and restored.journal is not None
        self.recoveries += 1
        if decision is not None:
            assert decision.mode == "paused"
            saved = self.journal.snapshots()["room"].data
            if old.state == SessionState.RUNNING:
                assert restored.state == SessionState.PAUSED
            else:
                assert restored.state == old.state
            if saved["run"] is not None:
                assert restored.offset(self.now) == saved["run"]["offset"]
            assert {c.id: c.state for c in restored.checkins.items.values()} == {
                i["id"]: i["state"] for i in saved["checkins"]
            }, "acknowledged check-ins stay acknowledged"
        # As resume_site does: journal the paused restore with a snapshot in this boot.
        restored.journal.write(restored, [Event("session_resumed", {"mode": "paused"})])
        self.session = restored
        # After a reboot the session restarts from its last journalled offset, by design.
        self.last_offset = restored.offset(self.now)
        self._count(restored.advance(self.now))

    def teardown(self) -> None:
        self.journal.close()
        shutil.rmtree(self.folder, ignore_errors=True)


JournalMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
TestJournalMachine = JournalMachine.TestCase
