"""``sessionctl serve``: every room of a config, its drivers, the journal, MQTT and the web app in
one event loop, as a systemd ``Type=notify`` service (dependencies.md §10).

    sessionctl serve --config /etc/sessionctl/room.yaml
    sessionctl serve --config config/demo.yaml --state-dir /tmp/s --port 8081 --log-format text

- READY=1 goes out once the config is loaded, the rooms are in their safe state and the web
  server listens; never waiting for the broker or a bridge (they reconnect on their own).
- WATCHDOG=1 is sent from a task on the event loop every ``WATCHDOG_USEC / 2``, only while
  every room's loop is alive: a blocked or broken loop stops the pings and systemd restarts us.
- STATUS= says what a person wants from ``systemctl status``:
  ``2 rooms; room-1: running iv-infusion 23:10/1:45:00; room-2 idle; broker connected``.
- SIGTERM/SIGINT: STOPPING=1, the web server stops taking commands, the rooms stop where they
  are (lights keep their state), the journal is closed, ``offline`` is published, exit 0.
- A bad config is reported as ``file:line:col: message`` with exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# The service itself (aiohttp, aiomqtt, the rooms) is imported only when serving, so the rest
# of the CLI starts fast.


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the rooms of a config as a service")
    p.add_argument("--config", type=Path, required=True, help="site config (YAML)")
    p.add_argument("--state-dir", type=Path, help="override site.state_dir (journal, Hue key)")
    p.add_argument("--host", help="override site.web.host")
    p.add_argument("--port", type=int, help="override site.web.port")
    p.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        default="auto",
        help="json: one object per line (default unless stdout is a terminal)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from controller.config import load_config
    from controller.logjson import setup_logging
    from controller.service import Service, apply_overrides

    setup_logging(args.log_format, verbose=args.verbose)
    config = load_config(args.config)
    apply_overrides(config, state_dir=args.state_dir, host=args.host, port=args.port)
    return asyncio.run(Service(config).run())
