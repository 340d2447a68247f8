"""Web API: tap-to-driver latency and WebSocket fan-out, against a bare aiohttp app.

    .venv/bin/python bench/web.py [--taps 300] [--rounds 200] [--tablets 20]

- **tap to driver**: a logged-in HTTP client POSTs ``panic`` / ``release`` to the real app
  (auth, CSRF checks, parse_command, Room.submit, journal-less room) and the clock stops when
  the room's mock light driver is handed the new desired state. Baseline: a bare aiohttp POST
  handler that only parses the JSON and sets a future, over the same loopback connection.
- **fan-out**: 20 tablets hold the room's WebSocket; a command is submitted and the clock stops
  when the last tablet has the resulting state message. Baseline: a bare aiohttp WebSocket
  handler broadcasting a same-sized text to 20 sockets.

Server and clients share one event loop (as on the Pi, client load included). Prints a table
and one JSON line; about 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from controller.clock import SystemClock  # noqa: E402
from controller.config import load_config  # noqa: E402
from controller.site import build_site  # noqa: E402
from controller.web.app import start_web  # noqa: E402
from controller.web.demo import ensure_demo_staff  # noqa: E402

HDR = {"X-Sessionctl": "1"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p99_ms": round(pct(values, 0.99), 3),
        "max_ms": round(max(values) * 1000, 3),
    }


async def bench_product(taps: int, rounds: int, tablets: int, state: Path) -> dict[str, Any]:
    config = load_config(ROOT / "config" / "demo.yaml")
    config.site.state_dir = state
    config.site.web.port = 0
    # Devices without a rate limit: the bench measures the web path, not bulb pacing.
    lights = config.rooms[0].drivers["lights"].options["devices"]
    config.rooms[0].drivers["lights"].model_extra["devices"] = {  # type: ignore[index]
        name: {"max_transition": 6553.5, "min_interval": 0.0} for name in lights
    }
    site = build_site(config, clock=SystemClock())
    await site.start()
    staff, pin = ensure_demo_staff(state)
    runner = await start_web(site, config.site.web)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    room = next(iter(site.rooms.values()))
    driver = room.drivers.lights["lights"]
    applied: asyncio.Event = asyncio.Event()
    real_apply = driver.apply

    async def watched_apply(commands: Any) -> None:
        applied.set()
        await real_apply(commands)

    driver.apply = watched_apply  # type: ignore[method-assign]
    out: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            r = await http.post(
                f"{base}/api/v1/login", json={"staff": staff, "pin": pin}, headers=HDR
            )
            assert r.status == 200, await r.text()
            url = f"{base}/api/v1/rooms/{room.id}/commands/"
            latencies = []
            for i in range(taps):
                verb = "panic" if i % 2 == 0 else "release"
                applied.clear()
                t0 = time.perf_counter()
                r = await http.post(url + verb, json={"cmd_id": f"t{i}"}, headers=HDR)
                await applied.wait()
                latencies.append(time.perf_counter() - t0)
                assert (await r.json())["accepted"], verb
            out["tap"] = summary(latencies)
            out["fanout"] = await _fanout(http, base, room.id, url, rounds, tablets)
    finally:
        await runner.cleanup()
        await site.close()
    return out


async def _fanout(
    http: aiohttp.ClientSession, base: str, room: str, url: str, rounds: int, tablets: int
) -> dict[str, Any]:
    sockets = [await http.ws_connect(f"{base}/api/v1/rooms/{room}/ws") for _ in range(tablets)]
    for ws in sockets:
        await ws.receive_json()
    times = []
    size = 0
    for i in range(rounds):
        verb = "panic" if i % 2 == 0 else "release"
        want = verb == "panic"
        t0 = time.perf_counter()
        await http.post(url + verb, json={"cmd_id": f"f{i}"}, headers=HDR)

        async def until_state(ws: aiohttp.ClientWebSocketResponse, want: bool = want) -> int:
            while True:
                msg = await ws.receive()
                data = json.loads(msg.data)
                if data["type"] == "state" and ("panic" in data["data"]["overlays"]) == want:
                    return len(msg.data)

        sizes = await asyncio.gather(*(until_state(ws) for ws in sockets))
        times.append(time.perf_counter() - t0)
        size = max(size, *sizes)
    for ws in sockets:
        await ws.close()
    return {**summary(times), "message_bytes": size}


async def bench_bare(taps: int, rounds: int, tablets: int, size: int) -> dict[str, Any]:
    got: asyncio.Event = asyncio.Event()
    sockets: list[web.WebSocketResponse] = []

    async def handler(request: web.Request) -> web.Response:
        await request.json()
        got.set()
        return web.json_response({"ok": True})

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.append(ws)
        async for _ in ws:
            pass
        return ws

    async def broadcast(request: web.Request) -> web.Response:
        text = json.dumps({"type": "state", "data": "x" * size})
        for ws in sockets:
            await ws.send_str(text)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/tap", handler)
    app.router.add_post("/broadcast", broadcast)
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    out: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as http:
            latencies = []
            for i in range(taps):
                got.clear()
                t0 = time.perf_counter()
                r = await http.post(f"{base}/tap", json={"cmd_id": f"t{i}"})
                await got.wait()
                latencies.append(time.perf_counter() - t0)
                await r.read()
            out["tap"] = summary(latencies)
            clients = [await http.ws_connect(f"{base}/ws") for _ in range(tablets)]
            while len(sockets) < tablets:
                await asyncio.sleep(0)
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                await http.post(f"{base}/broadcast")
                await asyncio.gather(*(ws.receive() for ws in clients))
                times.append(time.perf_counter() - t0)
            out["fanout"] = summary(times)
            for ws in clients:
                await ws.close()
    finally:
        await runner.cleanup()
    return out


def table(product: dict[str, Any], bare: dict[str, Any], tablets: int) -> str:
    rows = [
        ("tap to driver (HTTP)", product["tap"], bare["tap"]),
        (f"fan-out to {tablets} tablets (WS)", product["fanout"], bare["fanout"]),
    ]
    lines = [
        f"{'measure':<30} {'p50 ms':>8} {'p99 ms':>8} {'bare p50':>9} {'bare p99':>9} {'x p50':>6}"
    ]
    for name, p, b in rows:
        ratio = p["p50_ms"] / b["p50_ms"] if b["p50_ms"] else float("inf")
        lines.append(
            f"{name:<30} {p['p50_ms']:>8.2f} {p['p99_ms']:>8.2f} "
            f"{b['p50_ms']:>9.2f} {b['p99_ms']:>9.2f} {ratio:>6.1f}"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    run: Callable[..., Awaitable[dict[str, Any]]]
    with tempfile.TemporaryDirectory() as tmp:
        run = bench_product
        product = await run(args.taps, args.rounds, args.tablets, Path(tmp))
    bare = await bench_bare(
        args.taps, args.rounds, args.tablets, product["fanout"]["message_bytes"]
    )
    print(table(product, bare, args.tablets))
    result = {
        "bench": "web",
        "tablets": args.tablets,
        "product": product,
        "bare": bare,
        "ratio_tap_p50": round(product["tap"]["p50_ms"] / bare["tap"]["p50_ms"], 2),
        "ratio_fanout_p50": round(product["fanout"]["p50_ms"] / bare["fanout"]["p50_ms"], 2),
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--tablets", type=int, default=20)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
