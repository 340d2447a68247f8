"""A real mosquitto on a free loopback port, for any test area (dependencies.md §8.1).

    broker = Broker(tmp_path)            # anonymous; Broker(tmp_path, users={"room1": "pw"},
    broker.start()                       #   acl="pattern readwrite clinic/%u/#") for auth
    ... connect to 127.0.0.1:broker.port ...
    broker.kill()                        # SIGKILL: no goodbye, retained state may be lost
    broker.start()                       # same port again
    broker.stop()

Use :func:`require_mosquitto` first: it skips when mosquitto is missing, and fails under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest


def require_mosquitto() -> str:
    """The mosquitto binary; skip the test without it (fail under CI=true)."""
    path = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if path is None:
        reason = "mosquitto is not installed (apt install mosquitto mosquitto-clients)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def root_line() -> str:
    """mosquitto started as root drops to user ``mosquitto`` after reading its config and then
    cannot read pytest's 0700 temp dirs; ``user root`` keeps it root (only valid as root)."""
    return "user root\n" if os.geteuid() == 0 else ""


class Broker:
    """One mosquitto process; ``start()`` again after ``kill()`` reuses the same port."""

    def __init__(
        self,
        workdir: Path,
        *,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        config: str | None = None,
        port: int | None = None,
        persistence: bool = False,
    ) -> None:
        self.binary = require_mosquitto()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        if config is None:
            config = self._config(users, acl, persistence)
        self.conf.write_text(config)

    def _config(self, users: Mapping[str, str] | None, acl: str | None, persistence: bool) -> str:
        lines = [f"listener {self.port} 127.0.0.1", "set_tcp_nodelay true", "log_dest stderr"]
        if persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/"]
        if users:
            passwd = self.dir / "passwd"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwd), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            acl_path = self.dir / "acl"
            acl_path.write_text(acl)
            lines.append(f"acl_file {acl_path}")
        return "\n".join(lines) + "\n" + root_line()

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        # After a SIGKILL the port may linger briefly; mosquitto sets SO_REUSEADDR, so a retry
        # of the start is only needed if it exited at once.
        try:
            wait_for_port(self.port, timeout, self.proc)
        except RuntimeError:
            time.sleep(0.2)
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
                )
            wait_for_port(self.port, timeout, self.proc)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing sessions or saving anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
