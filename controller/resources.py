"""Where the shipped scenes, playlists and demo config are, in a checkout or an installation.

    scenes = resource("scenes")              # <checkout>/scenes, or the installed copy
    demo = resource("config/demo.yaml")

A checkout (or an editable install) uses the files next to the package. ``scripts/install-pi``
copies them to ``/opt/sessionctl/share`` beside the virtualenv, which is found from
``sys.prefix``; a package installed elsewhere looks in ``<prefix>/share/sessionctl``.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def candidates(name: str) -> list[Path]:
    prefix = Path(sys.prefix)
    return [CHECKOUT / name, prefix.parent / "share" / name, prefix / "share" / "sessionctl" / name]


def resource(name: str) -> Path:
    """The first place ``name`` exists; the checkout path if none does (errors then name it)."""
    for path in candidates(name):
        if path.exists():
            return path
    return CHECKOUT / name


SYSTEM_CONFIG = Path("/etc/sessionctl/room.yaml")


def default_config() -> Path:
    """The config a command uses without ``--config``: ``$SESSIONCTL_CONFIG``, else the
    installed ``/etc/sessionctl/room.yaml``, else the demo room of a checkout."""
    import os

    if os.environ.get("SESSIONCTL_CONFIG"):
        return Path(os.environ["SESSIONCTL_CONFIG"])
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return resource("config/demo.yaml")
