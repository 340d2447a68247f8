"""Service footprint: cold start to READY, resident memory and CPU while idle and while sessions
run, for 1 and 10 rooms, against a bare aiohttp + aiomqtt process measured in the same run.

    .venv/bin/python bench/footprint.py [--idle 5] [--busy 5] [--rooms 1,10]

Every variant is a real subprocess with a real mosquitto and a fake systemd notify socket:

- ``baseline``: aiohttp serving /healthz and an aiomqtt connection, sending READY=1; nothing else;
- ``serve N``: ``sessionctl serve`` on N mock rooms (journal, MQTT link and room API, web app).

Start is measured from ``Popen`` to the READY datagram (interpreter start and imports included),
in wall time and in the CPU time the process used to get there (which a loaded machine does not
inflate).
CPU is the process's user+system time over the window divided by the window. "busy" starts the
demo scene in every room over MQTT first. Targets for one room on this machine: READY ≤ 1 s,
RSS ≤ 60 MB, idle CPU ≤ 0.5 %. Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mqtt.broker import Broker, free_port  # noqa: E402
from tests.service.conftest import write_config  # noqa: E402

TARGETS = {"ready_s": 1.0, "rss_mb": 60.0, "idle_cpu_pct": 0.5}

BASELINE = r"""
import asyncio, os, signal, socket, sys
import aiomqtt
from aiohttp import web

async def healthz(_):
    return web.json_response({"status": "ok"})

async def main(port, broker):
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with aiomqtt.Client("127.0.0.1", broker, identifier="baseline"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(os.environ["NOTIFY_SOCKET"])
            s.send(b"READY=1")
        await stop.wait()
    await runner.cleanup()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


@dataclass
class Sample:
    name: str
    ready_s: float = 0.0
    ready_cpu_s: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_pct: dict[str, float] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads, in ns resolution (clock ticks are 10 ms, too
    coarse for an idle process)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended
    return total / 1e9


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_over(pid: int, seconds: float) -> float:
    before, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - t0)


def start_sessions(broker: int, rooms: int) -> None:
    """Start the demo scene in every room through the MQTT room API (mosquitto_pub)."""
    for i in range(1, rooms + 1):
        body = json.dumps({"cmd_id": f"bench-{i}", "actor": "bench", "scene": "demo"})
        topic = f"sessionctl/room-{i}/cmd/start"
        subprocess.run(
            ["mosquitto_pub", "-p", str(broker), "-q", "1", "-t", topic, "-m", body], check=True
        )


def measure(
    name: str, argv: list[str], args: argparse.Namespace, rooms: int, broker: int
) -> Sample:
    sample = Sample(name)
    with tempfile.TemporaryDirectory() as tmp:
        sock_path = Path(tmp) / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "PYTHONPATH": str(ROOT)}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while b"READY=1" not in sock.recv(4096).split(b"\n"):
                pass
            sample.ready_s = time.monotonic() - t0
            sample.ready_cpu_s = cpu_seconds(proc.pid)
            time.sleep(1.0)  # let start-up work (safe state, broker connect) settle
            sample.cpu_pct["idle"] = cpu_over(proc.pid, args.idle)
            sample.rss_mb["idle"] = rss_mb(proc.pid)
            if rooms:
                start_sessions(broker, rooms)
                time.sleep(0.5)
                sample.cpu_pct["busy"] = cpu_over(proc.pid, args.busy)
                sample.rss_mb["busy"] = rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            sock.close()
    return sample


def serve_argv(folder: Path, rooms: int, broker: int) -> list[str]:
    config = write_config(
        folder, rooms=rooms, mqtt={"host": "127.0.0.1", "port": broker, "client_id": folder.name}
    )
    return [sys.executable, "-m", "controller.cli", "serve", "--config", str(config)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=5.0, help="idle CPU window, seconds")
    parser.add_argument("--busy", type=float, default=5.0, help="busy CPU window, seconds")
    parser.add_argument("--rooms", default="1,10", help="room counts to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker")
        broker.start()
        try:
            samples = [
                measure(
                    "baseline",
                    [sys.executable, "-c", BASELINE, str(free_port()), str(broker.port)],
                    args,
                    0,
                    broker.port,
                )
            ]
            for n in (int(x) for x in args.rooms.split(",")):
                argv = serve_argv(Path(tmp) / f"site{n}", n, broker.port)
                samples.append(measure(f"serve {n} room(s)", argv, args, n, broker.port))
        finally:
            broker.stop()
    report(samples)
    return 0


def report(samples: list[Sample]) -> None:
    base = samples[0]
    header = f"{'variant':<18} {'READY s':>8} {'CPU s':>6} {'RSS MB':>7} {'busy MB':>8}"
    header += f" {'idle CPU%':>10} {'busy CPU%':>10} {'RSS ratio':>10}"
    print(header)
    for s in samples:
        print(
            f"{s.name:<18} {s.ready_s:>8.3f} {s.ready_cpu_s:>6.3f} {s.rss_mb['idle']:>7.1f} "
            f"{s.rss_mb.get('busy', float('nan')):>8.1f} {s.cpu_pct['idle']:>10.2f} "
            f"{s.cpu_pct.get('busy', float('nan')):>10.2f} "
            f"{s.rss_mb['idle'] / base.rss_mb['idle']:>10.2f}"
        )
    one = next((s for s in samples if s.name.startswith("serve 1 ")), None)
    verdict = {}
    if one is not None:
        verdict = {
            "ready_s": one.ready_s <= TARGETS["ready_s"],
            "ready_cpu_s": one.ready_cpu_s <= TARGETS["ready_s"],
            "rss_mb": one.rss_mb["idle"] <= TARGETS["rss_mb"],
            "idle_cpu_pct": one.cpu_pct["idle"] <= TARGETS["idle_cpu_pct"],
        }
        print(
            "targets (1 room): "
            + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in verdict.items())
        )
    data = {
        "bench": "footprint",
        "load_avg_1m": os.getloadavg()[0],
        "targets": TARGETS,
        "met": verdict,
        "variants": [
            {
                "name": s.name,
                "ready_s": round(s.ready_s, 3),
                "ready_cpu_s": round(s.ready_cpu_s, 3),
                "rss_mb": {k: round(v, 1) for k, v in s.rss_mb.items()},
                "cpu_pct": {k: round(v, 3) for k, v in s.cpu_pct.items()},
                "rss_ratio": round(s.rss_mb["idle"] / base.rss_mb["idle"], 2),
                "ready_ratio": round(s.ready_s / base.ready_s, 2),
            }
            for s in samples
        ],
    }
    print(json.dumps(data))


if __name__ == "__main__":
    sys.exit(main())
