"""libvlc missing: start() fails with an error naming the Debian packages.

Absence is real, not patched: the loader is pointed at a library path in an empty folder, in
process through the driver's ``libvlc`` option, and in a fresh interpreter through python-vlc's
own ``PYTHON_VLC_LIB_PATH`` (where python-vlc itself would exit the process).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.base import DriverContext, DriverError
from drivers.vlc import VlcAudio

ROOT = Path(__file__).resolve().parents[2]


async def test_missing_library_names_the_packages(tmp_path: Path) -> None:
    empty = tmp_path / "lib"
    empty.mkdir()
    context = DriverContext(monotonic=time.monotonic, state_dir=tmp_path)
    audio = VlcAudio("music", {"aout": "adummy", "libvlc": str(empty / "libvlc.so.5")}, context)
    with pytest.raises(DriverError, match=r"sudo apt-get install libvlc5 vlc-plugin-base"):
        await audio.start()
    assert not audio.health.available and audio.health.error is not None
    assert "libvlc5" in audio.health.error


SCRIPT = """
import asyncio, time
from pathlib import Path
from drivers.base import DriverContext, DriverError
from drivers.vlc import VlcAudio
async def main():
    audio = VlcAudio("music", {"aout": "adummy"}, DriverContext(time.monotonic, Path(".")))
    try:
        await audio.start()
    except DriverError as exc:
        print("DriverError:", exc)
asyncio.run(main())
"""


def test_python_vlc_lib_path_to_nothing_is_a_driver_error(tmp_path: Path) -> None:
    env = {"PYTHON_VLC_LIB_PATH": str(tmp_path / "libvlc.so.5"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "DriverError: libvlc not found" in result.stdout
    assert "apt-get install libvlc5 vlc-plugin-base" in result.stdout
