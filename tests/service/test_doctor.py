"""``sessionctl doctor`` against a running mosquitto, a stopped one, a broker that refuses the
credentials, and the fake Hue bridge (paired, unpaired, unknown key, unreachable)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.doctor import Check, run_checks
from drivers.hue_api import key_path, write_key
from tests.hue.fake_bridge import FakeHueBridge
from tests.mqtt.broker import Broker, free_port
from tests.service.conftest import ROOT, write_config

pytestmark = pytest.mark.integration


def _by_name(checks: list[Check], prefix: str) -> Check:
    return next(c for c in checks if c.name.startswith(prefix))


def _doctor(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_all_good_with_a_running_broker(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    try:
        config = write_config(tmp_path / "site", mqtt={"host": "127.0.0.1", "port": broker.port})
        (tmp_path / "site" / "state").mkdir()
        result = _doctor(config)
    finally:
        broker.stop()
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    config")
    assert any(line.startswith("ok    MQTT broker") for line in lines)
    for line in lines:  # "ok|FAIL|warn  <check>  — <text>"
        assert line.split()[0] in ("ok", "warn") and " — " in line


def test_stopped_broker_fails_with_a_fix(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", mqtt={"host": "127.0.0.1", "port": free_port()})
    (tmp_path / "site" / "state").mkdir()
    result = _doctor(config)
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if "MQTT broker" in x)
    assert line.startswith("FAIL") and "systemctl start mosquitto" in line


async def test_refused_credentials(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker", users={"room-1": "right"})
    broker.start()
    try:
        mqtt = {"host": "127.0.0.1", "port": broker.port, "username": "room-1", "password": "no"}
        checks = await run_checks(write_config(tmp_path / "site", mqtt=mqtt), timeout=3)
        assert _by_name(checks, "MQTT").status == "FAIL"
        assert "refused user 'room-1'" in _by_name(checks, "MQTT").text
        mqtt["password"] = "right"
        checks = await run_checks(write_config(tmp_path / "site", mqtt=mqtt), timeout=3)
        assert _by_name(checks, "MQTT").status == "ok"
    finally:
        broker.stop()


def _hue_config(folder: Path, host: str, **extra: object) -> Path:
    options = {"type": "hue", "host": host, "lights": {"desk": 1, "wall": 2}, **extra}
    return write_config(folder, extra_drivers=f"      hue: {json.dumps(options)}")


async def test_hue_bridge_paired_unpaired_and_unknown_key(tmp_path: Path) -> None:
    async with FakeHueBridge(lights=2, usernames=["good-key"]) as bridge:
        config = _hue_config(tmp_path / "site", bridge.host)
        state = tmp_path / "site" / "state"

        check = _by_name(await run_checks(config), "Hue")
        assert check.status == "FAIL" and "sessionctl hue pair --host" in check.text

        write_key(key_path(state, bridge.host), bridge.host, "good-key")
        check = _by_name(await run_checks(config), "Hue")
        assert check.status == "ok" and "2 light(s)" in check.text

        write_key(key_path(state, bridge.host), bridge.host, "forgotten-key")
        check = _by_name(await run_checks(config), "Hue")
        assert check.status == "FAIL" and "does not know this key" in check.text

        config = _hue_config(tmp_path / "site", bridge.host, username="good-key")
        config.write_text(config.read_text().replace('"wall": 2', '"wall": 7'))
        check = _by_name(await run_checks(config), "Hue")
        assert check.status == "warn" and "wall" in check.text


async def test_hue_bridge_unreachable(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    config = _hue_config(tmp_path / "site", host, username="k")
    check = _by_name(await run_checks(config, timeout=2), "Hue")
    assert check.status == "FAIL" and "no Hue bridge answers" in check.text


def test_bad_config_is_one_failing_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("type: mock-light", "type: no-such-driver"))
    result = _doctor(config)
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL  config")
    assert f"{config}:" in result.stdout and "no-such-driver" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


async def test_journal_and_state_dir(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site")
    checks = await run_checks(config)
    assert _by_name(checks, "state directory").status == "FAIL"
    state = tmp_path / "site" / "state"
    state.mkdir()
    (state / "journal.sqlite3").write_bytes(b"this is not a database" * 100)
    checks = await run_checks(config)
    assert _by_name(checks, "journal").status == "FAIL"
    assert _by_name(checks, "disk space").status == "ok"
