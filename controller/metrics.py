"""Prometheus metrics for ``/metrics`` (text exposition format 0.0.4), no client library needed.

    metrics = add_metrics_route(app, site)     # before the app starts; hooks every room
    print(metrics.render())

What is exported (rooms are labelled by their config id; nothing about patients):

- ``sessionctl_cue_lateness_seconds``: histogram of how late each room's loop woke for a
  deadline (a cue, a fade step, a retry), from :attr:`controller.room.Room.on_wake`.
- ``sessionctl_room_up``, ``sessionctl_room_state``, ``sessionctl_checkins_open``.
- ``sessionctl_driver_up``, ``sessionctl_driver_failures_total``, ``sessionctl_driver_errors_total``
  and ``sessionctl_devices_offline`` from :meth:`Room.health`.
- ``sessionctl_mqtt_connected``, ``..._connects_total``, ``..._queued``, ``..._dropped_total``
  from the MQTT link, when the site has one (``site.extras["mqtt"]``).
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from controller.session import SessionState
from controller.site import Site

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
METRICS_KEY = web.AppKey("sessionctl_metrics", object)


class Histogram:
    """A cumulative histogram with fixed upper bounds, as Prometheus wants it."""

    def __init__(self, buckets: Sequence[float] = LATENESS_BUCKETS) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: dict[str, str]) -> Iterable[str]:
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            yield _sample(f"{name}_bucket", {**labels, "le": le}, running)
        yield _sample(f"{name}_sum", labels, self.sum)
        yield _sample(f"{name}_count", labels, self.count)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    number = f"{value:.9g}" if isinstance(value, float) else str(value)
    return f"{name}{{{text}}} {number}" if text else f"{name} {number}"


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


class Metrics:
    """Collects lateness from the rooms and reads everything else when scraped."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.started = time.time()
        self.lateness: dict[str, Histogram] = {}
        for room in site.rooms.values():
            self.lateness[room.id] = histogram = Histogram()
            room.on_wake = histogram.observe

    def render(self) -> str:
        out: list[str] = []
        out += self._lateness()
        out += self._rooms()
        out += self._drivers()
        out += self._mqtt()
        out += self._process()
        return "\n".join(out) + "\n"

    def _lateness(self) -> list[str]:
        name = "sessionctl_cue_lateness_seconds"
        out = _header(name, "histogram", "How late a room's loop woke for a deadline.")
        for room_id, histogram in self.lateness.items():
            out += histogram.lines(name, {"room": room_id})
        return out

    def _rooms(self) -> list[str]:
        up = _header("sessionctl_room_up", "gauge", "1 while the room's loop runs.")
        state = _header("sessionctl_room_state", "gauge", "The room's session state (1 = current).")
        healthy = _header("sessionctl_room_healthy", "gauge", "1 when every driver is fine.")
        open_ = _header("sessionctl_checkins_open", "gauge", "Check-ins shown and not yet closed.")
        for room in self.site.rooms.values():
            labels = {"room": room.id}
            view = room.view()
            up.append(_sample("sessionctl_room_up", labels, int(room.running)))
            for s in SessionState:
                value = int(view["state"] == s.value)
                state.append(_sample("sessionctl_room_state", {**labels, "state": s.value}, value))
            healthy.append(_sample("sessionctl_room_healthy", labels, int(view["health"]["ok"])))
            open_.append(_sample("sessionctl_checkins_open", labels, len(view["checkins"])))
        return up + state + healthy + open_

    def _drivers(self) -> list[str]:
        names = {
            "up": ("gauge", "1 when the driver is available and its last call worked."),
            "failures_total": ("counter", "Driver calls that failed or timed out."),
            "errors_total": ("counter", "Errors the driver reported itself."),
            "devices_offline": ("gauge", "Devices the driver reports unreachable."),
        }
        groups: dict[str, list[str]] = {
            key: _header(f"sessionctl_driver_{key}", kind, text)
            for key, (kind, text) in names.items()
        }
        for room in self.site.rooms.values():
            for driver, h in room.health()["drivers"].items():
                labels = {"room": room.id, "driver": driver, "kind": str(h["kind"])}
                values = {
                    "up": int(bool(h["ok"])),
                    "failures_total": int(h["failures"]),
                    "errors_total": int(h["errors"]),
                    "devices_offline": len(h["devices_offline"]),
                }
                for key, value in values.items():
                    groups[key].append(_sample(f"sessionctl_driver_{key}", labels, value))
        return [line for lines in groups.values() for line in lines]

    def _mqtt(self) -> list[str]:
        link: Any = self.site.extras.get("mqtt")
        if link is None:
            return []
        h = link.health()
        return [
            *_header("sessionctl_mqtt_connected", "gauge", "1 while connected to the broker."),
            _sample("sessionctl_mqtt_connected", {}, int(bool(h["connected"]))),
            *_header("sessionctl_mqtt_connects_total", "counter", "Successful broker connects."),
            _sample("sessionctl_mqtt_connects_total", {}, int(h["connects"])),
            *_header("sessionctl_mqtt_queued", "gauge", "Messages waiting in the outbox."),
            _sample("sessionctl_mqtt_queued", {}, int(h["queued"])),
            *_header("sessionctl_mqtt_dropped_total", "counter", "Messages the outbox dropped."),
            _sample("sessionctl_mqtt_dropped_total", {}, int(h["dropped"])),
        ]

    def _process(self) -> list[str]:
        out = _header("process_start_time_seconds", "gauge", "Start time, Unix seconds.")
        out.append(_sample("process_start_time_seconds", {}, float(self.started)))
        rss = _rss_bytes()
        if rss is not None:
            out += _header("process_resident_memory_bytes", "gauge", "Resident memory.")
            out.append(_sample("process_resident_memory_bytes", {}, rss))
        return out


def _rss_bytes() -> int | None:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def add_metrics_route(app: web.Application, site: Site) -> Metrics:
    """Serve ``GET /metrics`` from ``app`` (call before it starts); calling twice is harmless."""
    existing = app.get(METRICS_KEY)
    if isinstance(existing, Metrics):
        return existing
    metrics = Metrics(site)
    app[METRICS_KEY] = metrics

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", handler)
    return metrics
