"""C1 (testing.md §12): SIGKILL a real room process at random instants, restart it, and check
what the journal promises: quick_check ok, safe state before every resume, the resumed offset
within 1 s of the truth, no accepted command lost, no check-in prompted twice or dropped."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from controller.clock import VirtualClock
from controller.config import load_config
from controller.journal import Journal
from tests.journal.conftest import ROOT, write_site

KILLS = int(os.environ.get("JOURNAL_KILLS", "50"))
PHASE = 2.0  # seconds; a check-in one second into every phase

SCENE = (
    "name: Kill loop\nroute: demo\nroles: {ambient: Room light}\nphases:\n"
    + "".join(
        f"""  - id: p{i}
    duration: {PHASE:g}s
    cues:
      - {{at: 0s, lights: {{roles: ambient, level: {10 + i}, fade: 1s}}}}
      - {{at: 1s, checkin: {{id: c{i}, kind: comfort, prompt: Check {i}, ack_within: 60s}}}}
"""
        for i in range(60)
    )
    + "  - {id: end, hold: true, cues: [{at: 0s, lights: {roles: ambient, level: 50}}]}\n"
)


def _lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the line the kill cut short
    return out


@pytest.mark.integration
def test_sigkill_at_random_instants(tmp_path: Path) -> None:
    config_path = write_site(tmp_path, scene=SCENE, scene_id="kill")
    rng = random.Random(int(os.environ.get("JOURNAL_KILL_SEED", "0")) or None)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    said: list[dict[str, Any]] = []
    started = time.monotonic()
    for i in range(KILLS + 1):
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "journal" / "kill_harness.py"), str(config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
        )
        assert proc.stdout is not None
        first = b""
        # A random instant: a third of the kills land in start-up and resume, the rest while
        # the room runs (after it said it was ready).
        if i < KILLS and rng.random() < 0.35:
            delay = rng.uniform(0.05, 0.8)
        else:
            first = proc.stdout.readline()
            delay = rng.uniform(0.0, 0.35) if i < KILLS else 1.0
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"harness died by itself: {out!r}"
        said += _lines((first + out).decode())
    elapsed = time.monotonic() - started

    config = load_config(config_path)
    journal = Journal.open(config.site.journal.path, clock=VirtualClock())
    assert journal.notices == [] and journal.fault is None
    assert journal.quick_check() == "ok"
    rows = list(journal.rows())
    journal.close()

    readies = [s for s in said if s.get("ready")]
    assert len(readies) >= 10, f"too few restarts got as far as running ({len(readies)})"
    assert all(r["quick_check"] == "ok" for r in readies)

    started_rows = [r for r in rows if r["kind"] == "session_started"]
    assert len(started_rows) == 1, "one session across every crash"
    token = started_rows[0]["session"]
    # Monotonic time is shared by every process of this boot: the truth is the time since
    # the start (the scene never pauses here).
    start_mono = _mono_of(config.site.journal.path, started_rows[0]["seq"])
    errors = []
    for ready in readies:
        if ready["token"] != token:
            continue
        truth = min(ready["mono"] - start_mono, 60 * PHASE)
        errors.append(abs(ready["offset"] - truth))
        assert errors[-1] < 1.0, (ready, truth)
    assert len(errors) >= 5

    # No accepted command lost: everything the harness saw accepted is in the journal.
    journaled = {r["cmd_id"] for r in rows if r["kind"] == "command"}
    accepted = [s["cmd"] for s in said if s.get("cmd") and s["accepted"]]
    assert accepted, "the nurse acknowledged something"
    assert set(accepted) <= journaled

    # No check-in prompted twice; none dropped up to where the session got.
    due = Counter(r["detail"]["checkin"] for r in rows if r["kind"] == "checkin_due")
    assert due and max(due.values()) == 1, due
    reached = max(r["offset"] or 0.0 for r in rows if r["session"] == token)
    expected = {f"c{i}" for i in range(60) if i * PHASE + 1.0 <= reached - 1e-6}
    assert expected <= set(due), sorted(expected - set(due))
    acked = Counter(r["detail"]["checkin"] for r in rows if r["kind"] == "checkin_acknowledged")
    assert max(acked.values()) == 1

    # The safe state was applied before every resume.
    kinds = [r["kind"] for r in rows]
    resumes = [i for i, k in enumerate(kinds) if k == "session_resumed"]
    assert resumes, "some restart resumed the session"
    assert all(kinds[i - 1] == "safe_state" for i in resumes)
    print(
        f"kill loop: {KILLS} kills in {elapsed:.1f} s, {len(readies)} restarts resumed, "
        f"max offset error {max(errors) * 1000:.1f} ms, {len(accepted)} accepted commands, "
        f"{len(due)} check-ins, {len(resumes)} resumes"
    )
    assert elapsed < 90, f"the kill loop took {elapsed:.0f} s"


def _mono_of(path: Path, seq: int) -> float:
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return float(db.execute("SELECT mono FROM events WHERE seq = ?", (seq,)).fetchone()[0])
    finally:
        db.close()
