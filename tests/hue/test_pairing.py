"""Pairing and listing against the fake bridge; phue runs in a thread, the fake on the loop."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from drivers.hue_api import key_path, read_key
from drivers.hue_pairing import (
    HuePairingError,
    format_room_snippet,
    list_bridge,
    pair,
    register_cli,
)
from tests.hue.conftest import MakeBridge
from tests.hue.fake_bridge import FakeLight


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $HOME that must stay empty: phue's default config file lives there."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


async def test_pairing_without_the_button_says_what_to_do(
    make_bridge: MakeBridge, tmp_path: Path, home: Path
) -> None:
    bridge = await make_bridge()
    state_dir = tmp_path / "state"
    waits: list[float] = []
    with pytest.raises(HuePairingError) as caught:
        await asyncio.to_thread(
            pair, bridge.host, state_dir, timeout=0.3, interval=0.05, on_wait=waits.append
        )
    message = str(caught.value)
    assert "link button" in message and f"sessionctl hue pair --host {bridge.host}" in message
    assert waits  # the caller was told it is waiting
    assert [r.body["devicetype"].split("#")[0] for r in bridge.requests] == ["sessionctl"] * len(
        bridge.requests
    )
    assert not key_path(state_dir, bridge.host).exists()
    assert os.listdir(home) == []


async def test_pairing_stores_a_private_key_in_the_state_dir(
    make_bridge: MakeBridge, tmp_path: Path, home: Path
) -> None:
    bridge = await make_bridge()
    state_dir = tmp_path / "state"

    def press_on_first_wait(left: float) -> None:
        bridge.press_link_button()  # staff press the button while we wait

    key = await asyncio.to_thread(
        pair, bridge.host, state_dir, timeout=5, interval=0.05, on_wait=press_on_first_wait
    )
    assert key in bridge.usernames
    path = key_path(state_dir, bridge.host)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key(path, bridge.host) == key
    assert os.listdir(home) == []
    # Pairing again replaces the key and keeps the file private.
    bridge.press_link_button()
    second = await asyncio.to_thread(pair, bridge.host, state_dir, timeout=1)
    assert second != key and read_key(path, bridge.host) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_pairing_with_no_bridge_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HuePairingError, match=re.escape("no Hue bridge answers at 127.0.0.1:9")):
        await asyncio.to_thread(pair, "127.0.0.1:9", tmp_path, timeout=0.1)


async def test_list_gives_pasteable_yaml(make_bridge: MakeBridge, tmp_path: Path) -> None:
    lights = {
        1: FakeLight("Ceiling 1", ct_range=(153, 454)),
        2: FakeLight("Ceiling 1", ct_range=(153, 500)),
        3: FakeLight("Plug", type="On/Off plug-in unit", ct_range=None, xy=False, dimmable=False),
    }
    bridge = await make_bridge(lights=lights, groups={4: [1, 2]})
    bridge.press_link_button()
    await asyncio.to_thread(pair, bridge.host, tmp_path, timeout=1)
    text = await asyncio.to_thread(list_bridge, bridge.host, tmp_path)
    config = yaml.safe_load(text)["drivers"]["hue"]
    assert config == {
        "type": "hue",
        "host": bridge.host,
        "lights": {"ceiling_1": 1, "ceiling_1_2": 2, "plug": 3},
        "groups": {"group_4": 4},
    }
    assert "ct 153-454 mired" in text and "on/off only" in text
    assert '# "Group 4" (Room): ceiling_1, ceiling_1_2' in text


def test_snippet_of_an_empty_bridge_is_valid_yaml() -> None:
    config = yaml.safe_load(format_room_snippet("10.0.0.2", {}, {}))["drivers"]["hue"]
    assert config["lights"] == {} and config["groups"] == "auto"


async def test_list_before_pairing_points_to_pair(tmp_path: Path) -> None:
    with pytest.raises(HuePairingError, match=re.escape("sessionctl hue pair --host 10.0.0.2")):
        await asyncio.to_thread(list_bridge, "10.0.0.2", tmp_path)


async def test_cli_commands(
    make_bridge: MakeBridge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="sessionctl")
    register_cli(parser.add_subparsers())
    bridge = await make_bridge(lights=2)
    bridge.press_link_button()
    state = str(tmp_path / "s")
    args = parser.parse_args(["hue", "pair", "--host", bridge.host, "--state-dir", state])
    assert await asyncio.to_thread(args.handler, args) == 0
    args = parser.parse_args(["hue", "list", "--host", bridge.host, "--state-dir", state])
    assert await asyncio.to_thread(args.handler, args) == 0
    out = capsys.readouterr().out
    assert "Paired." in out and "lamp_1: 1" in out
