"""The OpenAPI 3.1 document of the tablet API, maintained by hand next to the routes.

    doc = openapi_document(session_cookie="sessionctl-session")

aiohttp generates no document, so this one is written out; ``tests/web/test_openapi.py`` keeps
it and the application's routes in agreement, and schemathesis checks the answers against it.
"""

from __future__ import annotations

from typing import Any

from controller import __version__
from controller.commands import MAX_EXTEND, STOP_REASONS, VERBS

ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"
NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"

_ERROR = {"$ref": "#/components/schemas/Error"}
_NAME = {"type": "string", "pattern": NAME}

# Per-verb body fields, mirroring controller/commands.py (_ALLOWED/_REQUIRED).
_FIELDS: dict[str, dict[str, Any]] = {
    "scene": _NAME,
    "phase": {"type": ["string", "null"], "pattern": NAME},
    "seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_EXTEND},
    "override": {"type": "boolean"},
    "reason": {"type": "string", "enum": list(STOP_REASONS)},
    "name": _NAME,
    "on": {"type": "boolean"},
    "checkin": _NAME,
    "option": _NAME,
}
_VERB_FIELDS: dict[str, tuple[list[str], list[str]]] = {
    "start": (["scene"], ["scene"]),
    "pause": ([], []),
    "resume": ([], []),
    "skip": (["phase"], []),
    "extend": (["seconds"], ["seconds"]),
    "stop": (["override", "reason"], []),
    "panic": ([], []),
    "release": ([], []),
    "overlay": (["name", "on"], ["name", "on"]),
    "ack": (["checkin"], ["checkin"]),
    "respond": (["checkin", "option"], ["checkin", "option"]),
}
assert set(_VERB_FIELDS) == set(VERBS)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Not logged in, or the session has ended",
        403: "Cross-site request, or a paired tablet asking for another room",
        404: "No such room, scene or endpoint",
        429: "Too many failed logins; wait retry_after seconds",
        503: "Not available yet",
    }
    out = {str(c): _json(_ERROR, text[c]) for c in codes}
    out["default"] = _json(_ERROR, "Any other error")
    return out


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    auth: bool = True,
    changes_state: bool = False,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    parameters = list(params or [])
    if changes_state:
        parameters.append(
            {
                "name": "X-Sessionctl",
                "in": "header",
                "required": True,
                "description": "CSRF defence: must be 1",
                "schema": {"type": "string", "enum": ["1"]},
            }
        )
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if security is not None:
        op["security"] = security
    else:
        op["security"] = [{"staffSession": []}] if auth else []
    return op


_ROOM = {"name": "room", "in": "path", "required": True, "schema": _NAME}


def _schemas() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "retry_after": {"type": "integer"}},
        },
        "Me": {
            "type": "object",
            "required": ["staff", "room", "expires_in"],
            "properties": {
                "staff": {"type": "string"},
                "room": nullable_str,
                "expires_in": {"type": "number", "minimum": 0},
            },
        },
        "RoomView": {
            "type": "object",
            "required": [
                "state",
                "overlays",
                "frozen",
                "alert",
                "checkins",
                "session",
                "room",
                "health",
                "wall",
                "rev",
                "instance",
                "overlay_choices",
            ],
            "properties": {
                "state": {"type": "string"},
                "overlays": {"type": "array", "items": {"type": "string"}},
                "overlay_choices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "title"],
                        "properties": {"name": _NAME, "title": {"type": "string"}},
                    },
                },
                "frozen": {"type": "boolean"},
                "checkins": {"type": "array", "items": {"type": "object"}},
                "session": {"type": ["object", "null"]},
                "room": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                },
                "health": {
                    "type": "object",
                    "required": ["ok", "drivers", "notes"],
                    "properties": {"ok": {"type": "boolean"}},
                },
                "wall": {"type": "string"},
                "rev": {
                    "type": "integer",
                    "description": "Grows with every state change; drop a view older than one "
                    "already shown (same instance)",
                },
                "instance": {"type": "string", "description": "Changes when the process does"},
            },
        },
        "Scene": {
            "type": "object",
            "required": [
                "id",
                "name",
                "description",
                "route",
                "length",
                "min_duration",
                "phases",
            ],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "route": {"type": "string"},
                "length": {"type": "number"},
                "min_duration": {"type": ["number", "null"]},
                "phases": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "title", "start", "end", "holds"],
                        "properties": {
                            "id": {"type": "string"},
                            "title": {"type": "string"},
                            "start": {"type": "number"},
                            "end": {"type": "number"},
                            "holds": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        "Outcome": {
            "type": "object",
            "required": ["cmd_id", "verb", "accepted", "reason", "duplicate", "session"],
            "properties": {
                "cmd_id": {"type": "string"},
                "verb": {"type": "string", "enum": list(VERBS)},
                "accepted": {"type": "boolean"},
                "reason": nullable_str,
                "duplicate": {"type": "boolean"},
                "session": nullable_str,
            },
        },
    }


def _command_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for verb, (fields, required) in _VERB_FIELDS.items():
        body = {
            "type": "object",
            "required": ["cmd_id", *required],
            "properties": {"cmd_id": {"type": "string", "pattern": ID}}
            | {f: _FIELDS[f] for f in fields},
            "additionalProperties": False,
        }
        summary = f"Command {verb!r} for the room; the actor is the logged-in staff member"
        security: list[dict[str, list[str]]] | None = None
        if verb == "panic":
            # An emergency cannot wait for a PIN: the room's own paired tablet may send it.
            summary += ", or without a login the tablet paired with this room (tablet:<id>)"
            security = [{"staffSession": []}, {"pairedDevice": []}]
        paths[f"/api/v1/rooms/{{room}}/commands/{verb}"] = {
            "post": _op(
                summary,
                {
                    "200": _json(
                        {"$ref": "#/components/schemas/Outcome"},
                        "What became of it (accepted false with a reason is still 200)",
                    ),
                    **_errors(400, 401, 403, 404),
                },
                body=body,
                params=[_ROOM],
                changes_state=True,
                security=security,
            )
        }
    return paths


def openapi_document(
    *, session_cookie: str, device_cookie: str = "sessionctl-device"
) -> dict[str, Any]:
    ref = "#/components/schemas/"
    no_content = {"description": "Done"}
    paths: dict[str, Any] = {
        "/healthz": {
            "get": _op(
                "The process is alive",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ok"}},
                        },
                        "Alive",
                    )
                },
                auth=False,
            )
        },
        "/readyz": {
            "get": _op(
                "Rooms running; drivers' health in brief",
                {
                    "200": _json({"$ref": ref + "Ready"}, "Every room is running"),
                    "503": _json({"$ref": ref + "Ready"}, "Some room is not running"),
                },
                auth=False,
            )
        },
        "/api/v1/openapi.json": {
            "get": _op(
                "This document", {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_errors(401)}
            )
        },
        "/api/v1/login": {
            "post": _op(
                "Log in with a staff id and PIN; sets the session cookie",
                {
                    "200": _json({"$ref": ref + "Login"}, "Logged in"),
                    "429": {
                        **_json(_ERROR, "Too many failed attempts"),
                        "headers": {"Retry-After": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 403),
                },
                body={
                    "type": "object",
                    "required": ["staff", "pin"],
                    "properties": {
                        "staff": {"type": "string", "maxLength": 64},
                        "pin": {"type": "string", "maxLength": 64},
                    },
                },
                auth=False,
                changes_state=True,
            )
        },
        "/api/v1/logout": {
            "post": _op(
                "End the session (server-side)",
                {"204": no_content, **_errors(403)},
                auth=False,
                changes_state=True,
            )
        },
        "/api/v1/me": {
            "get": _op(
                "Who is logged in; does not extend the session",
                {"200": _json({"$ref": ref + "Me"}, "The session"), **_errors(401)},
            )
        },
        "/api/v1/device": {
            "get": _op(
                "Which room this tablet is paired with (no login needed)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["room", "room_name"],
                            "properties": {
                                "room": {"type": ["string", "null"]},
                                "room_name": {"type": ["string", "null"]},
                            },
                        },
                        "The paired room, or nulls",
                    )
                },
                auth=False,
            )
        },
        "/api/v1/pair": {
            "post": _op(
                "Pair this tablet with one room (long-lived device cookie)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["room"],
                            "properties": {"room": {"type": "string"}},
                        },
                        "Paired",
                    ),
                    **_errors(400, 401, 403, 404),
                },
                body={
                    "type": "object",
                    "required": ["room"],
                    "properties": {"room": _NAME},
                    "additionalProperties": False,
                },
                changes_state=True,
            ),
            "delete": _op(
                "Unpair this tablet (the device token is revoked)",
                {"204": no_content, **_errors(401, 403)},
                changes_state=True,
            ),
        },
        "/api/v1/rooms": {
            "get": _op(
                "Every room this device may see",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["rooms"],
                            "properties": {
                                "rooms": {"type": "array", "items": {"$ref": ref + "RoomView"}}
                            },
                        },
                        "Rooms",
                    ),
                    **_errors(401),
                },
            )
        },
        "/api/v1/rooms/{room}": {
            "get": _op(
                "One room's live state",
                {"200": _json({"$ref": ref + "RoomView"}, "The room"), **_errors(401, 403, 404)},
                params=[_ROOM],
            )
        },
        "/api/v1/rooms/{room}/audit": {
            "get": _op(
                "The room's audit trail",
                {
                    "200": {
                        "description": "Entries",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 403, 404, 503),
                },
                params=[
                    _ROOM,
                    {
                        "name": "since",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["json", "csv"]},
                    },
                ],
            )
        },
        "/api/v1/rooms/{room}/ws": {
            "get": _op(
                "WebSocket of live state and events (see API.md)",
                {"101": {"description": "Switching protocols"}, **_errors(400, 401, 403, 404)},
                params=[_ROOM],
            )
        },
        "/api/v1/scenes": {
            "get": _op(
                "Scenes offered (in a room, or everywhere)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["scenes"],
                            "properties": {
                                "scenes": {"type": "array", "items": {"$ref": ref + "Scene"}}
                            },
                        },
                        "Scenes",
                    ),
                    **_errors(401, 403, 404),
                },
                params=[{"name": "room", "in": "query", "required": False, "schema": _NAME}],
            )
        },
        "/api/v1/scenes/{scene}/timeline.svg": {
            "get": _op(
                "The scene's timeline as a picture",
                {
                    "200": {
                        "description": "SVG",
                        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 404, 503),
                },
                params=[{"name": "scene", "in": "path", "required": True, "schema": _NAME}],
            )
        },
        **_command_paths(),
    }
    schemas = _schemas()
    schemas["Login"] = {
        "type": "object",
        "required": ["staff", "room"],
        "properties": {"staff": {"type": "string"}, "room": {"type": ["string", "null"]}},
    }
    schemas["Ready"] = {
        "type": "object",
        "required": ["ready", "rooms"],
        "properties": {"ready": {"type": "boolean"}, "rooms": {"type": "object"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sessionctl tablet API",
            "version": __version__,
            "description": "See controller/web/API.md. State-changing requests need the "
            "header X-Sessionctl: 1 and a same-origin Origin.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "staffSession": {"type": "apiKey", "in": "cookie", "name": session_cookie},
                "pairedDevice": {"type": "apiKey", "in": "cookie", "name": device_cookie},
            },
        },
    }
