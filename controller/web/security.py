"""Response headers, cross-site request checks and JSON errors for every request.

    app = web.Application(middlewares=[json_errors, same_origin_only])
    app.on_response_prepare.append(security_headers)

``same_origin_only`` is the CSRF defence (OWASP ASVS 3.5.1/3.5.3): a state-changing request
must carry the custom header ``X-Sessionctl: 1`` (a cross-site page cannot add it without a
CORS preflight, which this server never grants) and, when the browser says where it comes from,
``Origin`` must be our own origin and ``Sec-Fetch-Site`` ``same-origin``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("sessionctl.web")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CSRF_HEADER = "X-Sessionctl"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answered as ``{"error": message, **extra}`` with the given status."""

    def __init__(
        self,
        status: int,
        message: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


def error_response(status: int, message: str, extra: dict[str, Any] | None = None) -> web.Response:
    return web.json_response({"error": message, **(extra or {})}, status=status)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith("/api/") or request.path in ("/healthz", "/readyz"):
        response.headers.setdefault("Cache-Control", "no-store")


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def cross_site_reason(request: web.Request) -> str | None:
    """Why this request looks cross-site (None: it does not)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != own_origin(request):
        return "cross-origin request refused"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() != "same-origin":
        return "cross-site request refused"
    return None


@web.middleware
async def same_origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS:
        if request.headers.get(CSRF_HEADER) != "1":
            raise ApiError(403, f"missing header {CSRF_HEADER}: 1")
        reason = cross_site_reason(request)
        if reason is not None:
            raise ApiError(403, reason)
    return await handler(request)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is ``{"error": ...}`` JSON; an unexpected one is logged, never shown."""
    try:
        return await handler(request)
    except ApiError as exc:
        out = error_response(exc.status, exc.message, exc.extra)
        out.headers.update(exc.headers)
        return out
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        out = error_response(exc.status, exc.reason)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                out.headers[name] = exc.headers[name]
        return out
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal error")
