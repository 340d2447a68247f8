"""MQTT command latency: ``cmd/pause`` published → the retained ``state`` showing ``paused``
seen by a subscriber, against a raw aiomqtt round trip (publish → echo client republishes →
receive) on the same broker in the same run. Both paths are two broker hops at QoS 1.

    .venv/bin/python bench/mqtt_latency.py [--samples 150] [--gap 0.15]

Commands alternate pause/resume on a running demo session, spaced by ``--gap`` (above the
bus's 100 ms state rate limit, so each state change goes out at once). Prints a table and one
JSON line; the target is a p50 ratio of at most 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.mqtt.broker import Broker
from tests.mqtt.controller_rig import ControllerRig

BASE = "clinic/room1"
# The same socket option the controller's link sets, so the baseline is the best raw client.
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def baseline(port: int, samples: int, gap: float) -> list[float]:
    async with (
        aiomqtt.Client("127.0.0.1", port, identifier="echo", socket_options=NODELAY) as echo,
        aiomqtt.Client("127.0.0.1", port, identifier="pinger", socket_options=NODELAY) as pinger,
    ):
        await echo.subscribe("bench/ping", qos=1)
        await pinger.subscribe("bench/pong", qos=1)

        async def run_echo() -> None:
            async for m in echo.messages:
                await echo.publish("bench/pong", m.payload, qos=1)

        task = asyncio.create_task(run_echo())
        out: list[float] = []
        messages = aiter(pinger.messages)
        for i in range(samples):
            t0 = time.perf_counter()
            await pinger.publish("bench/ping", str(i).encode(), qos=1)
            while (await anext(messages)).payload != str(i).encode():
                pass
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(gap)
        task.cancel()
        return out


async def controller(
    port: int, state_dir: Path, samples: int, gap: float
) -> tuple[list[float], list[float]]:
    rig = await ControllerRig.start(port, state_dir)
    await rig.link.wait_connected(5)
    state_lat: list[float] = []
    reply_lat: list[float] = []
    try:
        async with aiomqtt.Client(
            "127.0.0.1", port, identifier="staff", socket_options=NODELAY
        ) as staff:
            await staff.subscribe(f"{BASE}/state", qos=1)
            await staff.subscribe(f"{BASE}/reply", qos=1)
            messages = aiter(staff.messages)
            start = {"cmd_id": "bench-start", "actor": "bench", "scene": "demo"}
            await staff.publish(f"{BASE}/cmd/start", json.dumps(start).encode(), qos=1)
            while True:
                m = await anext(messages)
                if str(m.topic).endswith("/state") and json.loads(m.payload)["state"] == "running":  # type: ignore[arg-type]
                    break
            await asyncio.sleep(0.3)
            for i in range(samples):
                verb, want = ("pause", "paused") if i % 2 == 0 else ("resume", "running")
                body = json.dumps({"cmd_id": f"b-{i}", "actor": "bench"}).encode()
                t0 = time.perf_counter()
                await staff.publish(f"{BASE}/cmd/{verb}", body, qos=1)
                got_state = got_reply = False
                while not (got_state and got_reply):
                    m = await anext(messages)
                    data = json.loads(m.payload)  # type: ignore[arg-type]
                    now = time.perf_counter() - t0
                    if str(m.topic).endswith("/reply") and data.get("cmd_id") == f"b-{i}":
                        if not data["accepted"]:
                            raise RuntimeError(f"{verb} refused: {data['reason']}")
                        reply_lat.append(now)
                        got_reply = True
                    elif (
                        str(m.topic).endswith("/state") and data["state"] == want and not got_state
                    ):
                        state_lat.append(now)
                        got_state = True
                await asyncio.sleep(gap)
    finally:
        await rig.close()
    return state_lat, reply_lat


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument("--gap", type=float, default=0.15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker")
        broker.start()
        try:
            base = await baseline(broker.port, args.samples, args.gap)
            state, reply = await controller(
                broker.port, Path(tmp) / "state", args.samples, args.gap
            )
        finally:
            broker.stop()
    rows = {"raw round trip (baseline)": base, "cmd -> reply": reply, "cmd -> state": state}
    print(f"{'path':28} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in rows.items():
        print(
            f"{name:28} {len(values):5d} {pct(values, 0.5) * 1e3:8.2f} "
            f"{pct(values, 0.99) * 1e3:8.2f} {max(values) * 1e3:8.2f}"
        )
    ratio50 = pct(state, 0.5) / pct(base, 0.5)
    ratio99 = pct(state, 0.99) / pct(base, 0.99)
    print(f"ratio cmd->state / baseline: p50 {ratio50:.2f}, p99 {ratio99:.2f} (target p50 <= 2)")
    print(
        json.dumps(
            {
                "bench": "mqtt_latency",
                "samples": args.samples,
                "baseline_p50_ms": round(pct(base, 0.5) * 1e3, 3),
                "baseline_p99_ms": round(pct(base, 0.99) * 1e3, 3),
                "state_p50_ms": round(pct(state, 0.5) * 1e3, 3),
                "state_p99_ms": round(pct(state, 0.99) * 1e3, 3),
                "reply_p50_ms": round(pct(reply, 0.5) * 1e3, 3),
                "ratio_p50": round(ratio50, 3),
                "ratio_p99": round(ratio99, 3),
                "mean_state_ms": round(statistics.fmean(state) * 1e3, 3),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
