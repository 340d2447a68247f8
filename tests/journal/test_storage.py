"""Faulty storage (testing.md §12 C4, C5): damaged journal files at start, a full disk and a
read-only filesystem while sessions run."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.clock import VirtualClock
from controller.commands import Command
from controller.config import Config, load_config
from controller.journal import Journal
from controller.resume import start_site
from controller.virtualtime import run_virtual
from tests.journal.conftest import ROOT, write_site

FIXTURES = ROOT / "tests" / "fixtures" / "journal"
CASES = json.loads((FIXTURES / "cases.json").read_text())


def _cmd(verb: str, cmd_id: str, **args: Any) -> Command:
    return Command(verb, cmd_id, "nurse-3", args)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_damaged_journal_is_moved_aside_and_reported(
    site_config: Config, case: dict[str, str]
) -> None:
    path = site_config.site.journal.path
    path.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / case["file"], path)
    original = path.read_bytes()
    clock = VirtualClock()

    async def main() -> dict[str, Any]:
        site = await start_site(site_config, clock=clock)
        room = site.rooms["room-1"]
        journal: Journal = site.extras["journal"]
        view = room.view()
        started = await room.submit(_cmd("start", "s1", scene="arc"))
        out = {
            "view": view,
            "started": started.accepted,
            "aside": journal.moved_aside,
            "check": journal.quick_check(),
            "kinds": [r["kind"] for r in journal.rows()],
            "lights": room.drivers.lights["lights"].calls[:2],  # type: ignore[attr-defined]
        }
        await site.close()
        journal.close()
        return out

    out = run_virtual(main(), clock)
    assert len(out["aside"]) == 1
    assert out["aside"][0].read_bytes() == original, "the damaged file is kept for inspection"
    assert out["check"] == "ok"
    notes = out["view"]["health"]["notes"]
    assert case["problem"] in notes["journal_reset"]
    assert "moved aside" in notes["journal_reset"]
    assert out["view"]["health"]["ok"] is False, "reported loudly"
    assert out["view"]["state"] == "ready", "nothing resumed from a damaged journal"
    assert out["kinds"][:2] == ["safe_state", "journal_reset"]
    assert all(c.command.setting.level == 40 for c in out["lights"]), "the room went safe"
    assert out["started"], "the fresh journal works, so a new session may start"


def test_missing_journal_is_created_quietly(site_config: Config) -> None:
    journal = Journal.open(site_config.site.journal.path, clock=VirtualClock())
    assert journal.fault is None and journal.notices == [] and journal.quick_check() == "ok"
    db = sqlite3.connect(site_config.site.journal.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    journal.close()


def _run_until_full(site_config: Config) -> dict[str, Any]:
    clock = VirtualClock()

    async def main() -> dict[str, Any]:
        site = await start_site(site_config, clock=clock)
        room = site.rooms["room-1"]
        journal: Journal = site.extras["journal"]
        assert (await room.submit(_cmd("start", "s1", scene="arc"))).accepted
        pages = journal.with_connection(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
        # SQLITE_FULL on the real connection: the file may not grow by another page.
        journal.with_connection(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))
        n = 0
        while "journal" not in room.health_notes and n < 500:
            n += 1
            await room.submit(_cmd("extend", f"e{n}", seconds=1))
        full = room.view()
        refused = await room.submit(_cmd("stop", "stop1"))
        after_stop = room.view()
        start_again = await room.submit(_cmd("start", "s2", scene="arc"))
        await asyncio.sleep(40)
        running = room.view()
        journal.with_connection(lambda db: db.execute("PRAGMA max_page_count = 1000000"))
        await room.submit(_cmd("extend", "e-after", seconds=1))
        healed = room.view()
        await site.close()
        journal.close()
        return {
            "full": full,
            "stop": refused.accepted,
            "after_stop": after_stop,
            "start": start_again,
            "running": running,
            "healed": healed,
        }

    return run_virtual(main(), clock)


def test_disk_full_refuses_new_sessions_and_keeps_the_room(site_config: Config) -> None:
    out = _run_until_full(site_config)
    assert "full" in out["full"]["health"]["notes"]["journal"]
    assert out["full"]["state"] == "running", "the running session keeps its environment"
    assert out["stop"], "staff can still stop"
    assert not out["start"].accepted
    assert "cannot start a session" in (out["start"].reason or "")
    assert out["running"]["health"]["notes"]["journal"]
    assert "journal" not in out["healed"]["health"]["notes"], "a later good write clears it"


# -- a real tiny tmpfs and a real read-only remount, in a rootless mount namespace ---------


def _unshare() -> list[str]:
    unshare = shutil.which("unshare")
    probe = (
        subprocess.run(
            [unshare, "-rm", "true"], capture_output=True, timeout=10, check=False
        ).returncode
        if unshare
        else 1
    )
    if probe != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("unshare -rm (rootless mount namespace) is required under CI")
        pytest.skip("no rootless mount namespace (unshare -rm) for a tiny tmpfs")
    assert unshare is not None
    return [unshare, "-rm"]


def _rig(tmp_path: Path, scenario: str) -> dict[str, Any]:
    config = write_site(tmp_path)
    mount = tmp_path / "mnt"
    mount.mkdir()
    proc = subprocess.run(
        [
            *_unshare(),
            sys.executable,
            str(ROOT / "tests" / "journal" / "storage_rig.py"),
            str(config),
            str(mount),
            scenario,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.integration
def test_tiny_tmpfs_disk_full(tmp_path: Path) -> None:
    out = _rig(tmp_path, "full")
    assert out["filled"], "the tmpfs was filled to ENOSPC"
    assert "full" in out["notes_full"].get("journal", ""), out["notes_full"]
    assert out["state_full"] == "running"
    assert out["offset_later"] > out["offset_full"], "the timeline kept going"
    assert out["start_refused"]
    assert "journal" not in out["notes_freed"], "writes work again once space is freed"


@pytest.mark.integration
def test_read_only_filesystem(tmp_path: Path) -> None:
    out = _rig(tmp_path, "readonly")
    assert out["restart_fault"], "a restart on a read-only filesystem reports the fault"
    assert out["restart_notes"].get("journal"), "and shows it in the room's health"
    assert out["restart_state"] == "running", "the running session keeps its environment"
    assert abs(out["restart_offset"] - out["expected_offset"]) < 1e-6
    assert out["restart_start_refused"], "no new session without a journal"


def test_load_config_puts_journal_in_state_dir(tmp_path: Path) -> None:
    config = load_config(write_site(tmp_path))
    assert config.site.journal.path == tmp_path / "state" / "journal.sqlite3"
