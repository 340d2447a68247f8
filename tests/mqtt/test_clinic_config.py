"""The shipped config/mosquitto files parse, refuse strangers, confine each room (S5), and
serve TLS: run with paths and ports rewritten into a temp dir."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from controller.mqtt import MqttConnection, MqttSettings, TlsSettings
from tests.mqtt.broker import Broker, free_port, root_line

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).parents[2] / "config" / "mosquitto"
USERS = {"room1": "pw1", "room2": "pw2", "monitor": "pwm", "integration": "pw-integration"}


def make_certs(directory: Path) -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is missing")
        pytest.skip("openssl is missing")
    directory.mkdir(parents=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    for name in ("server.key", "ca.key"):
        (directory / name).chmod(0o644)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RSA key generation is the slow part; one CA and server certificate per module."""
    directory = tmp_path_factory.mktemp("clinic") / "certs"
    make_certs(directory)
    return directory


@pytest.fixture
def clinic(tmp_path: Path, certs: Path) -> Iterator[tuple[Broker, int]]:
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copytree(certs, etc / "certs")
    text = (CONFIG / "sessionctl.conf").read_text()
    assert not any("#" in line and not line.startswith("#") for line in text.splitlines()), (
        "mosquitto forbids inline comments"
    )
    port, tls_port = free_port(), free_port()
    text = text.replace("/etc/mosquitto/", f"{etc}/")
    text = text.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    text = text.replace("listener 8883", f"listener {tls_port} 127.0.0.1")
    shutil.copy(CONFIG / "acl", etc / "acl")
    passwd = etc / "passwd"
    passwd.write_text("")
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    broker = Broker(tmp_path / "run", config=text + "log_dest stderr\n" + root_line(), port=port)
    broker.start()
    yield broker, tls_port
    broker.stop()


def client(port: int, user: str | None, **kw: object) -> aiomqtt.Client:
    password = USERS.get(user) if user else None
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, **kw)  # type: ignore[arg-type]


async def test_anonymous_and_wrong_password_are_refused(clinic: tuple[Broker, int]) -> None:
    broker, _ = clinic
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker.port, None):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", broker.port, username="room1", password="nope"):
            pass


async def test_room_is_confined_to_its_own_topics(clinic: tuple[Broker, int]) -> None:
    broker, _ = clinic
    async with client(broker.port, "monitor") as monitor:
        await monitor.subscribe("sessionctl/#", qos=1)
        await monitor.subscribe("zigbee2mqtt/#", qos=1)
        async with client(broker.port, "room1") as room1:
            # 3.1.1 has no negative PUBACK: the forbidden publishes "succeed" but go nowhere.
            await room1.publish("sessionctl/room2/cmd/panic", b"{}", qos=1)
            await room1.publish("zigbee2mqtt/room2/ceiling/set", b'{"state":"OFF"}', qos=1)
            await room1.publish("zigbee2mqtt/room1/ceiling/set", b'{"state":"ON"}', qos=1)
            await room1.publish("sessionctl/room1/state", b"{}", qos=1)
        seen: list[str] = []
        async for message in monitor.messages:
            seen.append(str(message.topic))
            if str(message.topic) == "sessionctl/room1/state":
                break
    assert seen == ["zigbee2mqtt/room1/ceiling/set", "sessionctl/room1/state"]


async def test_integration_sends_commands_but_cannot_pose_as_a_room(
    clinic: tuple[Broker, int],
) -> None:
    broker, _ = clinic
    async with client(broker.port, "monitor") as monitor:
        await monitor.subscribe("sessionctl/#", qos=1)
        async with client(broker.port, "integration") as integration:
            await integration.publish("sessionctl/room1/state", b"{}", qos=1, retain=True)
            await integration.publish("sessionctl/room1/status", b"online", qos=1)
            await integration.publish("sessionctl/room1/cmd/panic", b"{}", qos=1)
        message = await asyncio.wait_for(anext(aiter(monitor.messages)), 5)
    assert str(message.topic) == "sessionctl/room1/cmd/panic"


async def test_room_cannot_read_another_room(clinic: tuple[Broker, int]) -> None:
    broker, _ = clinic
    async with client(broker.port, "room2") as room2:
        await room2.subscribe("sessionctl/#", qos=1)
        async with client(broker.port, "room1") as room1:
            await room1.publish("sessionctl/room1/state", b"secret", qos=1)
        await room2.publish("sessionctl/room2/state", b"mine", qos=1)
        message = await asyncio.wait_for(anext(aiter(room2.messages)), 5)
        assert str(message.topic) == "sessionctl/room2/state"


async def test_tls_listener_with_the_link(clinic: tuple[Broker, int], tmp_path: Path) -> None:
    _, tls_port = clinic
    settings = MqttSettings(
        port=tls_port,
        username="room1",
        password="pw1",  # type: ignore[arg-type]
        client_id="room1",
        tls=TlsSettings(ca_file=tmp_path / "etc" / "certs" / "ca.crt"),
    )
    link = MqttConnection(settings, rooms=["room1"])
    await link.start()
    await link.wait_connected(10)
    await link.close()
    with pytest.raises(aiomqtt.MqttError):
        async with client(tls_port, "room1", tls_context=ssl.create_default_context()):
            pass
