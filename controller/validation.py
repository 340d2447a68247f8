"""Turn pydantic validation errors into ``file:line:col`` messages a clinician can act on.

doc = load_yaml(text, "iv.yaml")
scene = validate_document(Scene, doc)      # raises SourceErrors listing every problem
"""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

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
        raise SourceErrors(errors_from(exc, doc, words)) from None


def errors_from(exc: ValidationError, doc: YamlDocument, vocabulary: set[str]) -> list[SourceError]:
    out: list[SourceError] = []
    seen: set[tuple[int, int, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        message = _message(err, loc, vocabulary)
        is_key = err["type"] == "extra_forbidden"
        source = doc.error(loc, message, key=is_key)
        ident = (source.line, source.column, source.message)
        if ident not in seen:
            seen.add(ident)
            out.append(source)
    return out


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
        return f"unknown key {key!r}{hint}"
    if kind == "missing":
        return f"{where}: required, but missing"
    if kind == "model_type" or kind == "dict_type":
        return f"{where}: expected a mapping of keys to values"
    if kind == "list_type":
        return f"{where}: expected a list"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    return f"{where}: {msg[:1].lower() + msg[1:]}"


def did_you_mean(word: str, vocabulary: set[str] | list[str]) -> str:
    """``"; did you mean 'level'?"`` when a known word is close, otherwise ``""``."""
    close = difflib.get_close_matches(word, sorted(vocabulary), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


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
