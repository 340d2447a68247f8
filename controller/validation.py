"""Turn pydantic validation errors into ``file:line:col`` messages a clinician can act on.

doc = load_yaml(text, "iv.yaml")
scene = validate_document(Scene, doc)      # raises SourceErrors listing every problem
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Annotated, Any, TypeVar, Union

from pydantic import BaseModel, ValidationError

from controller.yamlsafe import SourceError, SourceErrors, YamlDocument

M = TypeVar("M", bound=BaseModel)


def validate_document(
    model: type[M], doc: YamlDocument, *, vocabulary: set[str] | None = None
) -> M:
    """Validate ``doc.data`` against ``model``; every error carries its source position."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        words = vocabulary if vocabulary is not None else field_names(model)
        raise SourceErrors(errors_from(exc, doc, words, model=model)) from None


def errors_from(
    exc: ValidationError,
    doc: YamlDocument,
    vocabulary: set[str],
    *,
    model: type[BaseModel] | None = None,
    prefix: tuple[Any, ...] = (),
) -> list[SourceError]:
    """Source errors for a validation error of the value at ``prefix`` in ``doc``.

    Unknown keys are matched against the keys allowed where they appear (when ``model`` is
    given), falling back to ``vocabulary``. Errors about values the YAML loader already
    reported and dropped (``doc.damaged``) are left out.
    """
    out: list[SourceError] = []
    seen: set[tuple[int, int, str]] = set()
    for err in exc.errors(include_url=False):
        loc = (*prefix, *(p for p in err["loc"] if not _is_union_tag(p)))
        if doc.is_damaged(loc):
            continue
        if err["type"] in _WHOLE_VALUE_CHECKS and doc.holds_damage(loc):
            # e.g. "nothing to change" because the level the loader dropped is missing.
            continue
        words = vocabulary
        if err["type"] == "extra_forbidden" and model is not None:
            words = keys_at(model, loc[len(prefix) : -1]) or vocabulary
        message = _message(err, loc, words)
        is_key = err["type"] == "extra_forbidden"
        source = doc.error(loc, message, key=is_key)
        ident = (source.line, source.column, source.message)
        if ident not in seen:
            seen.add(ident)
            out.append(source)
    return out


# The pattern of ids and names in scene and config files (see controller.scene.NAME_PATTERN).
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"

# Checks across a whole mapping (model validators), which a dropped value can trip falsely.
_WHOLE_VALUE_CHECKS = {"value_error", "assertion_error"}


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the member type name for unions (e.g. "float", "str", "function-before[...]").
    return isinstance(part, str) and (
        part in {"float", "int", "str", "bool", "list[str]", "none"}
        or part.startswith(("function-", "literal[", "list[", "tuple["))
    )


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) if loc else "the document"


def _message(err: Any, loc: tuple[Any, ...], vocabulary: set[str]) -> str:
    kind = err["type"]
    where = _where(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        hint = did_you_mean(key, vocabulary)
        if not hint and len(vocabulary) <= 12:
            hint = f" (expected one of: {', '.join(sorted(vocabulary))})"
        return f"unknown key {key!r}{hint}"
    if kind == "missing":
        return f"{where}: required, but missing"
    if kind == "model_type" or kind == "dict_type":
        return f"{where}: expected a mapping of keys to values"
    if kind == "list_type":
        return f"{where}: expected a list"
    if kind == "too_short" and err.get("ctx", {}).get("min_length") == 1:
        return f"{where}: must not be empty"
    if kind == "string_type" and isinstance(err.get("input"), bool):
        return (
            f"{where}: expected text, but YAML read a bare yes/no/on/off/true/false as "
            "a boolean; put it in quotes"
        )
    if kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == _NAME:
        return (
            f"{where}: {err.get('input')!r} is not a valid name; use lower-case letters, "
            "digits, '-' and '_', starting with a letter or digit"
        )
    msg = str(err["msg"])
    if kind == "literal_error" and isinstance(err.get("input"), str):
        choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        msg += did_you_mean(err["input"], choices)
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    return f"{where}: {msg[:1].lower() + msg[1:]}"


# Words people reach for that are spelled differently here; suggested only where allowed.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "colour": ("kelvin", "mired", "xy"),
    "color": ("kelvin", "mired", "xy"),
    "temperature": ("kelvin", "mired"),
    "ct": ("mired", "kelvin"),
    "cct": ("kelvin", "mired"),
    "brightness": ("level",),
    "bri": ("level",),
    "dim": ("level",),
    "transition": ("fade",),
    "playlist": ("play",),
    "offset": ("at",),
    "time": ("at",),
    "start": ("at",),
    "length": ("duration", "min"),
    "name": ("id", "title"),
}


def did_you_mean(word: str, vocabulary: set[str] | list[str]) -> str:
    """``"; did you mean 'level'?"`` when a known word is close, otherwise ``""``."""
    known = sorted(set(vocabulary) - {word})
    synonyms = [w for w in SYNONYMS.get(word.lower(), ()) if w in known]
    if synonyms:
        quoted = [repr(w) for w in synonyms]
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        return f"; did you mean {listed}?"
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """The keys allowed in the mapping at ``loc`` inside ``model`` (empty if unknown)."""
    current: list[Any] = _concrete(model)
    for part in loc:
        current = [t for item in current for t in _step(item, part)]
        if not current:
            return set()
    names: set[str] = set()
    for item in current:
        if isinstance(item, type) and issubclass(item, BaseModel):
            names |= {info.alias or name for name, info in item.model_fields.items()}
    return names


def _concrete(annotation: Any) -> list[Any]:
    """The types an annotation may stand for, without Annotated, Optional and unions."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _concrete(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in typing.get_args(annotation) for t in _concrete(arg)]
    return [annotation]


def _step(item: Any, part: Any) -> list[Any]:
    if isinstance(item, type) and issubclass(item, BaseModel):
        for name, info in item.model_fields.items():
            if part in (name, info.alias):
                return _concrete(info.annotation)
        return []
    origin = typing.get_origin(item)
    args = typing.get_args(item)
    if origin in (list, set, frozenset) and isinstance(part, int) and args:
        return _concrete(args[0])
    if origin is tuple and isinstance(part, int) and args:
        return _concrete(args[min(part, len(args) - 1)])
    if origin is dict and isinstance(part, str) and len(args) == 2:
        return _concrete(args[1])
    return []


def field_names(model: type[BaseModel], _seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field name (and alias) of a model and the models nested in it."""
    seen = _seen if _seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for sub in _nested_models(info.annotation):
            names |= field_names(sub, seen)
    return names


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            found.append(item)
        stack.extend(getattr(item, "__args__", ()) or ())
        origin = getattr(item, "__origin__", None)
        if origin is not None and origin is not item:
            stack.extend(getattr(origin, "__args__", ()) or ())
    return found
