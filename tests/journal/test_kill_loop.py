"""C1 (testing.md §12, issue 3): SIGKILL the real ``sessionctl serve`` at random instants,
restart it, and check what the journal promises: quick_check ok after every kill, the safe
state journalled before anything else each process does, the resumed offset within 1 s of the
truth, no accepted command lost, no check-in prompted twice or dropped.

The room is config/demo.yaml's (mock drivers) with the site pointed at a real mosquitto and a
compressed scene; the test is the nurse, working only through the MQTT room API (controller.bus).

    JOURNAL_KILLS=200 JOURNAL_KILL_SEED=7 pytest tests/journal/test_kill_loop.py -s
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from controller.clock import VirtualClock
from controller.journal import Journal
from tests.journal.conftest import ROOT
from tests.mqtt.broker import Broker

pytestmark = pytest.mark.integration

KILLS = int(os.environ.get("JOURNAL_KILLS", "50"))
PHASE = 2.0  # seconds; a check-in one second into every phase, acknowledged late or never
PHASES = 20 + KILLS  # more running time than the loop can use: the final hold is never reached
CHECKIN_AT = 1.0
PREFIX = "kill"
BASE = f"{PREFIX}/room-1"
WAIT = 30.0  # bound on any wait for the process: exceeding it is a failure, not a measurement
TOGGLES = ("start", "pause", "resume")


def scene_text() -> str:
    phases = "".join(
        f"""  - id: p{i}
    duration: {PHASE:g}s
    cues:
      - {{at: 0s, lights: {{roles: [ambient, accent], level: {10 + i % 80}, fade: 1s}}}}
      - at: {CHECKIN_AT:g}s
        checkin: {{id: c{i}, kind: comfort, prompt: Check {i}, ack_within: 1s,
                  escalate_after: 1s}}
"""
        for i in range(PHASES)
    )
    return (
        "name: Kill loop\nroute: demo\n"
        "roles: {ambient: Room light, accent: Lamp, path: Floor light}\nphases:\n"
        + phases
        + "  - {id: end, hold: true, cues: [{at: 0s, lights: {roles: ambient, level: 50}}]}\n"
    )


def write_config(folder: Path, broker_port: int) -> Path:
    """config/demo.yaml's rooms and drivers, the scene above, the test broker, any web port."""
    scenes = folder / "scenes"
    scenes.mkdir(parents=True)
    shutil.copy(ROOT / "scenes" / "overlays.yaml", scenes / "overlays.yaml")
    (scenes / "kill.yaml").write_text(scene_text())
    demo = (ROOT / "config" / "demo.yaml").read_text()
    rooms = demo[demo.index("\nrooms:\n") + 1 :]
    config = folder / "site.yaml"
    config.write_text(
        f"""site:
  name: Kill loop
  state_dir: state
  scenes_dir: scenes
  playlists_dir: {ROOT / "playlists"}
  mqtt: {{host: 127.0.0.1, port: {broker_port}, prefix: {PREFIX}, client_id: kill-room}}
  web: {{host: 127.0.0.1, port: 8080}}
{rooms}"""
    )
    return config


@dataclass
class Life:
    """One serve process, from spawn to reaped, and the first state it published."""

    index: int
    proc: asyncio.subprocess.Process
    spawned: float  # monotonic, before the exec
    spawned_wall: datetime
    died: float | None = None  # monotonic, after the process was reaped
    first_state: dict[str, Any] | None = None
    first_state_at: float | None = None  # monotonic, on arrival
    state: dict[str, Any] | None = None  # the latest
    seen: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Sent:
    """A command the nurse published: when, and what the reply said (None: no reply)."""

    cmd_id: str
    verb: str
    life: Life
    sent: float
    replied: float | None = None
    accepted: bool | None = None

    def window(self) -> tuple[float, float]:
        """When the process can have taken it: between sending and the reply or its death."""
        end = self.replied if self.replied is not None else self.life.died
        assert end is not None
        return self.sent, end


class Nurse:
    """Staff at the tablet, through MQTT: starts the scene, pauses and resumes, acknowledges
    check-ins a random while after they show (some after their window: they escalate)."""

    def __init__(self, client: aiomqtt.Client, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        self.life: Life | None = None
        self.sent: dict[str, Sent] = {}
        self.acking: set[str] = set()
        self.acked: set[str] = set()
        self.replies = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self.listening = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        async for message in self.client.messages:
            now = time.monotonic()
            topic = str(message.topic)
            if topic == f"{BASE}/state":
                self._on_state(json.loads(bytes(message.payload)), now)
            elif topic == f"{BASE}/reply":
                await self._on_reply(json.loads(bytes(message.payload)), now)

    def _on_state(self, view: dict[str, Any], now: float) -> None:
        life = self.life
        # The view's wall stamp tells this process's states from a dead one's still in flight.
        if life is None or datetime.fromisoformat(view["wall"]) < life.spawned_wall:
            return
        if life.first_state is None:
            life.first_state, life.first_state_at = view, now
            life.seen.set()
        life.state = view
        for prompt in view["checkins"]:
            checkin = str(prompt["id"])
            if prompt["state"] == "due" and checkin not in self.acked | self.acking:
                self.acking.add(checkin)
                self._spawn(self._ack_later(life, checkin))

    async def _on_reply(self, reply: dict[str, Any], now: float) -> None:
        sent = self.sent.get(str(reply.get("cmd_id")))
        if sent is None or sent.replied is not None:
            return
        async with self.replies:
            sent.replied, sent.accepted = now, bool(reply["accepted"])
            self.replies.notify_all()
        if sent.verb == "ack" and sent.accepted:
            self.acked.add(sent.cmd_id.split("-", 1)[0])

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack_later(self, life: Life, checkin: str) -> None:
        try:
            await asyncio.sleep(self.rng.uniform(0.0, 1.5))
            if self.life is life and life.died is None:
                await self.send(life, "ack", checkin=checkin, tag=checkin)
        finally:
            self.acking.discard(checkin)

    async def send(self, life: Life, verb: str, *, tag: str = "", **args: Any) -> Sent:
        cmd_id = f"{tag or verb}-{uuid.uuid4().hex[:12]}"
        sent = Sent(cmd_id, verb, life, time.monotonic())
        self.sent[cmd_id] = sent
        body = {"cmd_id": cmd_id, "actor": "nurse-7", **args}
        await self.client.publish(f"{BASE}/cmd/{verb}", json.dumps(body), qos=1)
        return sent

    async def toggle(self, life: Life) -> Sent | None:
        """Start the scene if nothing runs, else pause or resume now and then."""
        view = life.state or {}
        state = view.get("state")
        if view.get("session") is None or state in ("ready", "ended", "aborted"):
            return await self.send(life, "start", scene="kill")
        if state == "running" and self.rng.random() < 0.35:
            return await self.send(life, "pause")
        if state == "paused" and self.rng.random() < 0.8:
            return await self.send(life, "resume")
        return None

    async def settle(self, life: Life) -> None:
        """Wait (bounded) for the replies to everything sent to ``life``."""

        def answered() -> bool:
            return all(s.replied is not None for s in self.sent.values() if s.life is life)

        async with self.replies:
            await asyncio.wait_for(self.replies.wait_for(answered), WAIT)

    async def close(self) -> None:
        tasks = [self.listening, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def spawn(index: int, config: Path, folder: Path) -> Life:
    log = (folder / f"serve-{index:03d}.log").open("wb")
    spawned_wall, spawned = datetime.now(UTC), time.monotonic()
    with log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "controller.cli",
            "serve",
            "--config",
            str(config),
            "--state-dir",
            str(folder / "state"),
            "--port",
            "0",
            "--log-format",
            "json",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=folder,
        )
    return Life(index, proc, spawned, spawned_wall)


async def end(life: Life, sig: signal.Signals) -> int:
    life.proc.send_signal(sig)
    code = await asyncio.wait_for(life.proc.wait(), WAIT)
    life.died = time.monotonic()
    return code


async def first_state(life: Life, nurse: Nurse, folder: Path) -> dict[str, Any]:
    """The first state ``life`` published; fails at once if it exits or the nurse stops
    listening, and after a generous wait if it just says nothing."""
    seen = asyncio.ensure_future(life.seen.wait())
    exited = asyncio.ensure_future(life.proc.wait())
    pending = {seen, exited, nurse.listening}
    await asyncio.wait(pending, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    seen.cancel()
    exited.cancel()
    if nurse.listening.done():
        nurse.listening.result()  # raises whatever stopped it
        pytest.fail("the nurse's MQTT client stopped")
    if life.first_state is None or life.proc.returncode is not None:
        log = (folder / f"serve-{life.index:03d}.log").read_text(errors="replace")
        pytest.fail(
            f"serve #{life.index} (exit code {life.proc.returncode}) published no state in "
            f"{WAIT:.0f} s or exited by itself:\n{log[-3000:]}"
        )
    return life.first_state


def quick_check(state_dir: Path, scratch: Path) -> str:
    """PRAGMA quick_check on a copy (database and WAL as the kill left them): opening the
    journal itself would checkpoint the WAL and spare the next process its recovery."""
    scratch.mkdir(exist_ok=True)
    for old in scratch.iterdir():
        old.unlink()
    source = state_dir / "journal.sqlite3"
    if not source.exists():
        return "ok"  # killed before the journal was created
    for suffix in ("", "-wal"):
        part = source.with_name(source.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(part, scratch / part.name)
    db = sqlite3.connect(scratch / source.name)
    try:
        return "; ".join(str(r[0]) for r in db.execute("PRAGMA quick_check"))
    finally:
        db.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker")  # fails under CI=true when mosquitto is missing
    b.start()
    yield b
    b.stop()


async def test_sigkill_serve_at_random_instants(tmp_path: Path, broker: Broker) -> None:
    folder = tmp_path / "site"
    config = write_config(folder, broker.port)
    seed = int(os.environ.get("JOURNAL_KILL_SEED", "0")) or random.randrange(1, 2**31)
    rng = random.Random(seed)
    lives: list[Life] = []
    bad_checks: list[tuple[int, str]] = []
    started = time.monotonic()
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="nurse") as client:
        await client.subscribe(f"{BASE}/state", qos=1)
        await client.subscribe(f"{BASE}/reply", qos=1)
        nurse = Nurse(client, rng)
        try:
            for i in range(KILLS):
                if rng.random() < 0.1:  # down for longer now and then: a phase passes meanwhile
                    await asyncio.sleep(rng.uniform(1.0, 2.5))
                life = await spawn(i, config, folder)
                lives.append(life)
                nurse.life = life
                await _live_then_kill(life, nurse, rng, folder)
                check = quick_check(folder / "state", tmp_path / "copy")
                if check != "ok":
                    bad_checks.append((i, check))
            # The last process is stopped as systemd would, once its replies are in.
            life = await spawn(KILLS, config, folder)
            lives.append(life)
            nurse.life = life
            await first_state(life, nurse, folder)
            await nurse.toggle(life)
            await asyncio.sleep(1.5)
            await nurse.settle(life)
            assert await end(life, signal.SIGTERM) == 0
        finally:
            await nurse.close()
            for life in lives:
                if life.proc.returncode is None:
                    life.proc.kill()
                    await life.proc.wait()
    elapsed = time.monotonic() - started
    assert bad_checks == [], f"seed {seed}"
    _check_journal(folder, lives, nurse, seed, elapsed)


async def _live_then_kill(life: Life, nurse: Nurse, rng: random.Random, folder: Path) -> None:
    """Kill ``life`` at a random instant: 30 % during start-up (journal open, safe state,
    resume, connect), the rest while the nurse works, some just after a command went out or
    its reply came back."""
    if rng.random() < 0.3:
        await asyncio.sleep(rng.uniform(0.02, 0.7))
    else:
        await first_state(life, nurse, folder)
        window = rng.uniform(0.0, 0.8)
        before = rng.uniform(0.0, window)
        await asyncio.sleep(before)
        sent = await nurse.toggle(life)
        chance = rng.random()
        if sent is not None and chance < 0.2:
            await asyncio.sleep(rng.uniform(0.0, 0.005))  # likely before the reply
        elif sent is not None and chance < 0.4:
            # Just after the reply: a reply sent before the journal write would be caught here.
            await nurse.settle(life)
            await asyncio.sleep(rng.uniform(0.0, 0.02))
        else:
            await asyncio.sleep(window - before)
    assert await end(life, signal.SIGKILL) == -signal.SIGKILL, (
        f"serve #{life.index} exited by itself:\n"
        + (folder / f"serve-{life.index:03d}.log").read_text(errors="replace")[-3000:]
    )


def _journal_rows(path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cursor = db.execute(
            "SELECT seq, session, kind, offset_s, mono, cmd_id, payload FROM events ORDER BY seq"
        )
        names = [c[0] for c in cursor.description]
        return [{**dict(zip(names, r, strict=True)), "payload": json.loads(r[-1])} for r in cursor]
    finally:
        db.close()


def _check_journal(
    folder: Path, lives: list[Life], nurse: Nurse, seed: int, elapsed: float
) -> None:
    path = folder / "state" / "journal.sqlite3"
    journal = Journal.open(path, clock=VirtualClock())
    try:
        assert journal.notices == [] and journal.fault is None
        assert journal.quick_check() == "ok"
    finally:
        journal.close()
    rows = _journal_rows(path)
    why = f"seed {seed}; logs in {folder}"
    assert not [r for r in rows if r["kind"] == "journal_reset"], why
    tokens = {r["session"] for r in rows if r["kind"] == "session_started"}
    assert len(tokens) == 1, f"one session across every crash: {tokens} ({why})"
    (token,) = tokens

    # No accepted command lost: every reply that said accepted is a journalled command.
    journalled = {r["cmd_id"] for r in rows if r["kind"] == "command"}
    accepted = [s.cmd_id for s in nurse.sent.values() if s.accepted]
    assert accepted and set(accepted) <= journalled, (set(accepted) - journalled, why)
    assert journalled <= set(nurse.sent), "the journal holds only what the nurse sent"

    _check_safe_state_first(rows, lives, why)
    offsets = _check_offsets(rows, lives, nurse, token, why)
    due = _check_checkins(rows, token, why)
    kills = sum(1 for life in lives if life.proc.returncode == -signal.SIGKILL)
    unseen = sum(1 for life in lives if life.first_state is None)
    cut = sum(1 for s in nurse.sent.values() if s.replied is None and s.cmd_id in journalled)
    print(
        f"\nkill loop (seed {seed}): {kills} SIGKILLs of sessionctl serve in {elapsed:.1f} s "
        f"({unseen} before it published a state); {offsets.resumed} restarts showed the "
        f"resumed session: offset outside the truth by at most {offsets.error * 1000:.0f} ms, "
        f"off its middle by at most {offsets.miss * 1000:.0f} ms (widest truth interval "
        f"{offsets.width * 1000:.0f} ms); {len(accepted)} commands accepted, {cut} more "
        f"journalled but killed before the reply, "
        f"{sum(1 for s in nurse.sent.values() if s.accepted is False)} refused; "
        f"{len(due)} check-ins prompted once each"
    )
    assert kills == KILLS


def _life_of(rows: list[dict[str, Any]], lives: list[Life]) -> dict[int, list[dict[str, Any]]]:
    """The journal rows each process wrote (monotonic time is shared by the whole boot)."""
    by_life: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        owner = [
            life.index
            for life in lives
            if life.spawned <= row["mono"] <= (life.died or float("inf"))
        ]
        assert len(owner) == 1, f"row {row['seq']} written outside every process's life"
        by_life.setdefault(owner[0], []).append(row)
    return by_life


def _check_safe_state_first(rows: list[dict[str, Any]], lives: list[Life], why: str) -> None:
    """Each process journals its safe state before anything else, and the resume right after;
    every process that got as far as publishing a state had done both."""
    by_life = _life_of(rows, lives)
    had_session = False
    for life in lives:
        mine = [r["kind"] for r in by_life.get(life.index, [])]
        if mine:
            assert mine[0] == "safe_state", (life.index, mine[:3], why)
            if had_session:
                assert mine[1:2] in (["session_resumed"], ["session_restored"]), (life.index, mine)
        if life.first_state is not None:
            assert "safe_state" in mine, (life.index, why)
        had_session = had_session or "session_started" in mine


def _running_time(toggles: list[tuple[str, float]], until: float) -> float:
    total, since = 0.0, None
    for verb, at in sorted(toggles, key=lambda t: t[1]):
        if at > until:
            break
        if verb in ("start", "resume"):
            since = at if since is None else since
        elif since is not None:
            total, since = total + at - since, None
    return total + (until - since if since is not None else 0.0)


@dataclass(frozen=True)
class Offsets:
    error: float  # worst distance of a published offset outside the truth's interval
    miss: float  # worst distance from the middle of that interval
    width: float  # the widest interval
    resumed: int  # restarts that published the resumed session


def _check_offsets(
    rows: list[dict[str, Any]], lives: list[Life], nurse: Nurse, token: str, why: str
) -> Offsets:
    """The offset each restarted process first published against the truth: the running time
    since the start, pauses excluded, dead time included (same boot). A command's instant is
    known to lie between its sending and its reply (or the process's death): the truth is the
    interval between the earliest and the latest the toggles allow."""
    windows = [
        (r["payload"]["verb"], nurse.sent[r["cmd_id"]].window())
        for r in rows
        if r["kind"] == "command"
        and r["session"] == token
        and r["payload"]["verb"] in TOGGLES
        and not r["payload"].get("duplicate")
    ]
    # Least running time: every pause as early, every start and resume as late as possible.
    least = [(v, lo if v == "pause" else hi) for v, (lo, hi) in windows]
    most = [(v, hi if v == "pause" else lo) for v, (lo, hi) in windows]
    errors, misses, widths = [], [], []
    for life in lives:
        view, at = life.first_state, life.first_state_at
        if view is None or at is None or view["session"] is None:
            continue
        assert view["session"]["token"] == token, why
        lo, hi = _running_time(least, at), _running_time(most, at)
        assert hi < PHASES * PHASE, "the truth must stay clear of the final hold"
        offset = float(view["session"]["offset"])
        errors.append(max(lo - offset, offset - hi, 0.0))
        assert errors[-1] < 1.0, (life.index, offset, lo, hi, why)
        misses.append(abs(offset - (lo + hi) / 2))
        widths.append(hi - lo)
    assert len(errors) >= max(1, KILLS // 5), f"too few restarts resumed ({len(errors)}; {why})"
    return Offsets(max(errors), max(misses), max(widths), len(errors))


def _check_checkins(rows: list[dict[str, Any]], token: str, why: str) -> Counter[str]:
    """Every check-in whose time the session reached was prompted exactly once, never early.
    A check-in within 0.25 s of the last journalled offset may not have been handled yet."""
    mine = [r for r in rows if r["session"] == token]
    due = Counter(str(r["payload"]["checkin"]) for r in mine if r["kind"] == "checkin_due")
    assert due and max(due.values()) == 1, (due.most_common(3), why)
    for r in mine:
        if r["kind"] == "checkin_due":
            at = int(r["payload"]["checkin"][1:]) * PHASE + CHECKIN_AT
            assert r["offset_s"] >= at - 1e-3, ("prompted early", r, why)
    reached = max(r["offset_s"] or 0.0 for r in mine)
    times = {f"c{i}": i * PHASE + CHECKIN_AT for i in range(PHASES)}
    must = {c for c, t in times.items() if t <= reached - 0.25}
    assert must <= set(due), (sorted(must - set(due)), why)
    acked = Counter(
        str(r["payload"]["checkin"]) for r in mine if r["kind"] == "checkin_acknowledged"
    )
    assert not acked or max(acked.values()) == 1, (acked.most_common(3), why)
    return due
