"""scripts/install-pi into a temporary prefix: a working venv, config, state dir and a unit file
that systemd accepts; running it again upgrades and keeps the room config."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import free_port
from tests.service.conftest import ROOT, http_get

pytestmark = pytest.mark.integration

INSTALLER = ROOT / "scripts" / "install-pi"


def _install(prefix: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        [str(INSTALLER), "--prefix", str(prefix), "--no-systemd", "--no-apt"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One install for the module (it takes ~20 s: a fresh venv and pip)."""
    if shutil.which("python3") is None:
        pytest.skip("no python3 for the venv")
    root = tmp_path_factory.mktemp("install")
    result = _install(root)
    assert result.returncode == 0, result.stdout + result.stderr
    yield root


def test_layout_and_venv(prefix: Path) -> None:
    venv = prefix / "opt/sessionctl/venv"
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    version = subprocess.run(
        [venv / "bin/sessionctl", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("sessionctl ")
    scenes = prefix / "opt/sessionctl/share/scenes"
    result = subprocess.run(
        [venv / "bin/sessionctl", "validate", scenes], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    room = (prefix / "etc/sessionctl/room.yaml").read_text()
    assert f"scenes_dir: {scenes}" in room
    assert f"state_dir: {prefix}/var/lib/sessionctl" in room
    assert (prefix / "var/lib/sessionctl").is_dir()


def test_unit_file(prefix: Path) -> None:
    unit = prefix / "etc/systemd/system/sessionctl.service"
    text = unit.read_text()
    exec_start = f"ExecStart={prefix}/opt/sessionctl/venv/bin/sessionctl serve --config "
    assert exec_start + f"{prefix}/etc/sessionctl/room.yaml" in text
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=always",
        "RestartSec=3",
        "StartLimitIntervalSec=0",
        "SupplementaryGroups=audio",
        "StateDirectory=sessionctl",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ):
        assert line in text.splitlines()
    assert not [x for x in text.splitlines() if "#" in x]  # no comments in unit files
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_installed_service_serves(prefix: Path, tmp_path: Path) -> None:
    """The installed code (not the checkout) runs the installed example config."""
    port = free_port()
    venv = prefix / "opt/sessionctl/venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NOTIFY_SOCKET")}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                venv / "bin/sessionctl",
                "serve",
                "--config",
                prefix / "etc/sessionctl/room.yaml",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded wait for the port
            try:
                status, _ = http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()
    assert (prefix / "var/lib/sessionctl/journal.sqlite3").exists()


def test_running_again_upgrades_and_keeps_the_config(prefix: Path) -> None:
    room = prefix / "etc/sessionctl/room.yaml"
    room.write_text(room.read_text() + "# edited for room 1\n")
    marker = prefix / "opt/sessionctl/share/scenes/stale.yaml"
    marker.write_text("left over from an old version\n")
    result = _install(prefix)
    assert result.returncode == 0, result.stderr
    assert room.read_text().endswith("# edited for room 1\n")
    assert not marker.exists()  # shipped scenes are replaced, not merged
    assert "kept your" in result.stdout
