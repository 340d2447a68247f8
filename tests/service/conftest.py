"""Fixtures for the service tests: a fake systemd notify socket, configs, a serve subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's; a thread stamps each message
    on arrival, so the times are right even while the service's event loop is blocked."""

    path: Path
    messages: list[tuple[float, str]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def run(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(4096)
            except OSError:
                return
            with self._cond:
                for line in data.decode().splitlines():
                    self.messages.append((time.monotonic(), line))
                self._cond.notify_all()

    def lines(self, prefix: str = "") -> list[str]:
        with self._cond:
            return [m for _, m in self.messages if m.startswith(prefix)]

    def times(self, line: str) -> list[float]:
        with self._cond:
            return [t for t, m in self.messages if m == line]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 15.0) -> list[str]:
        """Bounded wait until ``count`` messages start with ``prefix``."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([m for _, m in self.messages if m.startswith(prefix)]) >= count,
                timeout,
            )
        if not ok:
            raise AssertionError(f"no {prefix!r} x{count} within {timeout}s: {self.lines()}")
        return self.lines(prefix)

    async def until(self, prefix: str, count: int = 1, timeout: float = 15.0) -> list[str]:
        """:meth:`wait_for` without blocking the test's event loop."""
        return await asyncio.to_thread(self.wait_for, prefix, count, timeout)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    ns = NotifySocket(path)
    thread = threading.Thread(target=ns.run, args=(sock,), daemon=True)
    thread.start()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield ns
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    thread.join(2)


def write_config(
    folder: Path,
    *,
    rooms: int = 1,
    port: int | None = None,
    mqtt: dict[str, Any] | None = None,
    extra_drivers: str = "",
) -> Path:
    """A site config with mock rooms, the shipped scenes and a state dir inside ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    site: dict[str, Any] = {
        "name": "Test clinic",
        "state_dir": str(folder / "state"),
        "scenes_dir": str(ROOT / "scenes"),
        "playlists_dir": str(ROOT / "playlists"),
        "web": {"host": "127.0.0.1", "port": port or free_port()},
    }
    if mqtt is not None:
        site["mqtt"] = mqtt
    lines = ["site: " + json.dumps(site), "rooms:"]
    for i in range(1, rooms + 1):
        lines += [
            f"  - id: room-{i}",
            "    drivers:",
            "      lights:",
            "        type: mock-light",
            "        devices: {ceiling: {}, lamp: {max_transition: 20},"
            " floor: {max_transition: 0, min_interval: 0.2}}",
            "      audio: {type: mock-audio}",
            extra_drivers,
            "    roles: {ambient: lights/ceiling, accent: lights/lamp, path: lights/floor}",
            "    audio: audio",
        ]
    path = folder / "site.yaml"
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def terminate(self, timeout: float = 20.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(
    config: Path,
    port: int,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
) -> Iterator[ServeProcess]:
    """``sessionctl serve`` as a subprocess; killed at the end if the test did not stop it."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, "-m", "controller.cli", "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=ROOT,
        )
    sp = ServeProcess(proc, port, log)
    try:
        yield sp
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
