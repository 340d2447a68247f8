"""The audit trail: what is in it, ``sessionctl export``, retention, and no patient data."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.clock import VirtualClock
from controller.commands import Command
from controller.config import Config, load_config
from controller.events import Event
from controller.journal import Journal, audit_site
from controller.resume import start_site
from controller.virtualtime import run_virtual
from tests.journal.conftest import ROOT, write_site

# Field names that would mean patient data got in (clinical-defaults.md §10).
FORBIDDEN = {
    "name",
    "patient",
    "patient_id",
    "patient_name",
    "first_name",
    "last_name",
    "dob",
    "birth",
    "date_of_birth",
    "birthdate",
    "mrn",
    "diagnosis",
    "dose",
    "dosage",
    "lot",
    "vitals",
    "heart_rate",
    "hr",
    "bp",
    "blood_pressure",
    "spo2",
    "score",
    "notes",
    "free_text",
    "audio",
    "video",
    "recording",
    "email",
    "phone",
    "address",
}


def _cmd(verb: str, cmd_id: str, actor: str = "nurse-3", **args: Any) -> Command:
    return Command(verb, cmd_id, actor, args)  # type: ignore[arg-type]


def _session(config: Config, clock: VirtualClock) -> None:
    """A full session with every kind of audit entry."""

    async def main() -> None:
        site = await start_site(config, clock=clock)
        room = site.rooms["room-1"]
        await room.submit(_cmd("start", "a1", scene="arc"))
        await room.submit(_cmd("start", "a2", scene="arc"))  # refused: already running
        await asyncio.sleep(70)  # baseline (due at 5 s) escalates at 65 s, comfort comes due
        await room.submit(_cmd("ack", "a3", actor="nurse-4", checkin="baseline"))
        await room.submit(_cmd("respond", "a4", checkin="comfort", option="settled"))
        await room.submit(_cmd("panic", "a5", actor="charge-1"))
        lights = room.drivers.lights["lights"]
        lights.set_fault("raise")  # type: ignore[attr-defined]
        await room.submit(_cmd("release", "a6", actor="charge-1"))
        await asyncio.sleep(3)
        lights.set_fault(None)  # type: ignore[attr-defined]
        await asyncio.sleep(200)
        await room.submit(_cmd("stop", "a7"))
        audit_site(
            {
                "kind": "login",
                "staff": "nurse-3",
                "ok": False,
                "reason": "wrong PIN",
                "client": "10.0.0.7",
                "device": "ab12",
                "room": None,
            }
        )
        await site.close()
        site.extras["journal"].close()

    run_virtual(main(), clock)


def _rows(config: Config, clock: VirtualClock, **kw: Any) -> list[dict[str, Any]]:
    journal = Journal.open(config.site.journal.path, clock=clock)
    try:
        return list(journal.rows(**kw))
    finally:
        journal.close()


def test_audit_trail_holds_commands_prompts_acks_escalations_panic_faults(
    site_config: Config,
) -> None:
    clock = VirtualClock()
    _session(site_config, clock)
    rows = _rows(site_config, clock)
    kinds = [r["kind"] for r in rows]
    for kind in (
        "safe_state",
        "command",
        "command_refused",
        "session_started",
        "checkin_due",
        "checkin_escalated",
        "checkin_acknowledged",
        "checkin_responded",
        "panic",
        "released",
        "driver_fault",
        "session_ended",
        "login",
    ):
        assert kind in kinds, kind
    refused = next(r for r in rows if r["kind"] == "command_refused")
    assert refused["cmd_id"] == "a2" and "already running" in refused["detail"]["reason"]
    ack = next(r for r in rows if r["kind"] == "checkin_acknowledged")
    assert ack["actor"] == "nurse-4"
    panic = next(r for r in rows if r["kind"] == "panic")
    assert panic["actor"] == "charge-1"
    assert all(r["time"].endswith("Z") for r in rows), "UTC times"
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    login = next(r for r in rows if r["kind"] == "login")
    assert login["actor"] == "nurse-3" and login["detail"]["reason"] == "wrong PIN"
    assert "pin" not in login["detail"], "the reason, never a PIN"


def _keys(value: Any, skip: bool = False) -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if not skip:
                out.add(str(k).lower())
            # "outcomes" is keyed by cmd_id (ours, in the test), not by field names.
            out |= _keys(v, skip=k == "outcomes")
    elif isinstance(value, list):
        for v in value:
            out |= _keys(v)
    return out


def test_journal_holds_no_patient_data_fields(site_config: Config) -> None:
    import sqlite3

    clock = VirtualClock()
    _session(site_config, clock)
    db = sqlite3.connect(site_config.site.journal.path)
    columns = {
        c[1].lower()
        for table in ("events", "snapshots")
        for c in db.execute(f"PRAGMA table_info({table})")
    }
    keys = set(columns)
    for (payload,) in db.execute("SELECT payload FROM events"):
        keys |= _keys(json.loads(payload))
    for (data,) in db.execute("SELECT data FROM snapshots"):
        keys |= _keys(json.loads(data))
    db.close()
    assert len(keys) > 30, "the check saw the real content"
    found = {k for k in keys if k in FORBIDDEN or any(f in k for f in ("patient", "birth"))}
    assert not found, f"patient-data field names in the journal: {sorted(found)}"
    raw = site_config.site.journal.path.read_bytes().lower()
    for word in (b"patient", b"date_of_birth", b'"mrn"', b'"dose"'):
        assert word not in raw


def _export(config_path: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "export", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_export_csv_and_json(tmp_path: Path) -> None:
    config_path = write_site(tmp_path)
    config = load_config(config_path)
    clock = VirtualClock()
    _session(config, clock)
    text = _export(config_path, "--room", "room-1", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[0].keys() >= {"time", "room", "kind", "actor", "cmd_id", "detail"}
    assert any(r["kind"] == "command_refused" and "already running" in r["detail"] for r in table)
    out = tmp_path / "audit.json"
    _export(config_path, "--format", "json", "-o", str(out), "--since", "2026-01-01T09:00:30")
    data = json.loads(out.read_text())
    assert data and all(d["time"] >= "2026-01-01T09:00:30" for d in data)
    assert len(data) < len(table)
    assert not {"login", "clock_step"} & {r["kind"] for r in table}, "site rows: no --room"
    assert {r["room"] for r in table} == {"room-1"}
    everything = json.loads(_export(config_path, "--format", "json"))
    assert [r["kind"] for r in everything].count("login") == 1
    other = json.loads(_export(config_path, "--room", "room-9", "--format", "json"))
    assert other == [], "a room's export holds nothing of the site or other rooms"


def test_retention_prunes_old_entries_at_start_and_daily(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    clock = VirtualClock(wall=datetime(2026, 1, 1, tzinfo=UTC))
    journal = Journal.open(path, clock=clock, retention_days=30)
    journal.append("room-1", [Event("old", {})])
    clock.step_wall(timedelta(days=20).total_seconds())
    journal.append("room-1", [Event("newer", {})])
    journal.close()
    clock.step_wall(timedelta(days=15).total_seconds())
    journal = Journal.open(path, clock=clock, retention_days=30)  # at start
    # The wall jump between the two writes is itself in the trail, as a clock step.
    assert [r["kind"] for r in journal.rows()] == ["clock_step", "newer"]
    clock.step_wall(timedelta(days=20).total_seconds())
    clock.advance(86400)  # a day of running: the daily prune comes with the next write
    journal.append("room-1", [Event("latest", {})])
    assert "newer" not in [r["kind"] for r in journal.rows()]
    journal.close()


def test_retention_waits_for_a_synchronised_clock(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    clock = VirtualClock(synchronized=False)
    journal = Journal.open(path, clock=clock, retention_days=1)
    journal.append("room-1", [Event("kept", {})])
    clock.step_wall(10 * 86400)  # a wrong date far ahead must not empty the trail
    assert journal.prune() == 0
    assert [r["kind"] for r in journal.rows()] == ["kept"]
    journal.close()
