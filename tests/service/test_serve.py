"""``sessionctl serve`` as a real subprocess: readiness, /healthz, /metrics, SIGTERM, MQTT
status, and config errors reported without a traceback."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from tests.mqtt.broker import Broker, free_port
from tests.service.conftest import ROOT, NotifySocket, http_get, serve, write_config

pytestmark = pytest.mark.integration


async def test_starts_answers_and_stops_cleanly(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    port = free_port()
    config = write_config(tmp_path / "site", port=port)
    with serve(config, port, tmp_path / "serve.log") as sp:
        await notify_socket.until("READY=1")
        status, body = http_get(sp.url + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, metrics = http_get(sp.url + "/metrics")
        assert status == 200
        assert 'sessionctl_room_up{room="room-1"} 1' in metrics
        assert 'sessionctl_driver_up{room="room-1",driver="lights",kind="mock-light"} 1' in metrics
        assert await asyncio.to_thread(sp.terminate) == 0
    assert notify_socket.lines("READY=") == ["READY=1"]
    assert notify_socket.lines("STOPPING=") == ["STOPPING=1"]
    assert "STATUS=1 room; room-1 idle" in notify_socket.lines("STATUS=")
    out = sp.output()
    assert "Traceback" not in out
    for line in out.splitlines():  # structured logs: one JSON object per line
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(record)
    assert (tmp_path / "site" / "state").is_dir()


async def test_mqtt_status_session_and_offline_on_sigterm(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    try:
        port = free_port()
        mqtt = {"host": "127.0.0.1", "port": broker.port, "prefix": "clinic", "client_id": "pi1"}
        config = write_config(tmp_path / "site", port=port, mqtt=mqtt)
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="watcher") as client:
            await client.subscribe("clinic/room-1/#", qos=1)
            with serve(config, port, tmp_path / "serve.log") as sp:
                await notify_socket.until("READY=1")
                await _wait_message(client, "clinic/room-1/status", b"online")
                await client.publish(
                    "clinic/room-1/cmd/start",
                    json.dumps({"cmd_id": "c1", "actor": "test", "scene": "demo"}),
                    qos=1,
                )
                reply = await _wait_message(client, "clinic/room-1/reply")
                assert json.loads(reply)["accepted"] is True
                status = await notify_socket.until("STATUS=1 room; room-1: running demo")
                assert status[-1].endswith("broker connected")
                metrics = await _metrics_until(sp.url, "sessionctl_cue_lateness_seconds_count")
                assert "sessionctl_mqtt_connected 1" in metrics
                assert 'sessionctl_room_state{room="room-1",state="running"} 1' in metrics
                assert await asyncio.to_thread(sp.terminate) == 0
                await _wait_message(client, "clinic/room-1/status", b"offline")
            assert "Traceback" not in sp.output()
            # A restart (systemd's Restart=always) resumes the session from the journal.
            notify_socket.messages.clear()
            with serve(config, port, tmp_path / "serve2.log") as sp:
                await notify_socket.until("READY=1")
                await notify_socket.until("STATUS=1 room; room-1: running demo")
                await _wait_message(client, "clinic/room-1/status", b"online")
                assert await asyncio.to_thread(sp.terminate) == 0
    finally:
        broker.stop()


async def _wait_message(client: aiomqtt.Client, topic: str, payload: bytes | None = None) -> bytes:
    async with asyncio.timeout(15):
        async for message in client.messages:
            data = message.payload
            assert isinstance(data, bytes)
            if str(message.topic) == topic and (payload is None or data == payload):
                return data
    raise AssertionError("unreachable")


async def _metrics_until(url: str, name: str) -> str:
    """/metrics once the room has woken for at least one deadline (bounded wait)."""
    async with asyncio.timeout(15):
        while True:
            _, text = await asyncio.to_thread(http_get, url + "/metrics")
            counts = [line for line in text.splitlines() if line.startswith(name)]
            if counts and float(counts[0].split()[-1]) > 0:
                return text
            await asyncio.sleep(0.2)


def _run_serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def test_yaml_error_is_reported_with_position(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("type: mock-light", "type: [mock-light"))
    result = _run_serve(config)
    assert result.returncode == 1
    assert f"{config}:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_driver_error_points_at_the_driver(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace("path: lights/floor", "path: lights/flor")
    config.write_text(text)
    result = _run_serve(config)
    assert result.returncode == 1
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == "rooms:")
    first = result.stderr.strip().splitlines()[0]
    file, row, col, message = first.split(":", 3)
    assert file == str(config) and int(row) > line and int(col) >= 1
    assert "flor" in message and "floor" in message  # did you mean
    assert "Traceback" not in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = _run_serve(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert "nope.yaml:1:1: cannot read" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = write_config(tmp_path, port=taken.getsockname()[1])
        result = _run_serve(config)
    assert result.returncode == 1
    assert "cannot start" in result.stdout and "Traceback" not in result.stdout + result.stderr
