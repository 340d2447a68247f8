"""Strict YAML loading with source positions.

Scene and config files are parsed with PyYAML's safe loader, but stricter: anchors and aliases,
duplicate keys, non-string keys, several documents, tags, oversized files and non-UTF-8 bytes
are errors. Every value keeps the line and column it came from, so a later validation error can
be reported as ``file:line:col: message``::

    doc = load_yaml("phases:\\n  - id: settle\\n", "demo.yaml")
    doc.data                     # {'phases': [{'id': 'settle'}]}
    doc.position(("phases", 0, "id"))   # (2, 9)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 40

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class SourceError:
    """One problem in a file, printed the way compilers and editors expect."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class SourceErrors(Exception):
    """Every problem found in one or more files; ``str()`` lists them one per line."""

    def __init__(self, errors: list[SourceError]) -> None:
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class YamlDocument:
    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # Problems found after parsing (duplicate keys, tags...) and the paths whose values were
    # dropped because of them, so schema errors about those paths are not reported twice.
    problems: list[SourceError] = field(default_factory=list)
    damaged: set[Path_] = field(default_factory=set)

    def is_damaged(self, path: Path_) -> bool:
        """True if ``path`` or one of its ancestors lost its value to a structural problem."""
        return any(path[:i] in self.damaged for i in range(len(path) + 1))

    def holds_damage(self, path: Path_) -> bool:
        """True if a value inside ``path`` (or ``path`` itself) was dropped."""
        return any(d[: len(path)] == path for d in self.damaged)

    def position(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at ``path``, or of its nearest ancestor."""
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.key_positions:
                return self.key_positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def error(self, path: Path_, message: str, *, key: bool = False) -> SourceError:
        line, column = self.position(path, key=key)
        return SourceError(self.file, line, column, message)


class _StrictLoader(yaml.SafeLoader):
    """Refuses anchors and aliases while composing, before anything is constructed."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed; write the value out in full",
                event.start_mark,  # type: ignore[arg-type]
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"anchors (&{anchor}) are not allowed; write each value out in full",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _mark(node_or_mark: Any) -> tuple[int, int]:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return (mark.line + 1, mark.column + 1)


def load_yaml(text: str | bytes, file: str) -> YamlDocument:
    """Parse one YAML document strictly; raise :class:`SourceErrors` on any problem."""
    doc = load_yaml_lenient(text, file)
    if doc.problems:
        raise SourceErrors(doc.problems)
    return doc


def load_yaml_lenient(text: str | bytes, file: str) -> YamlDocument:
    """Like :func:`load_yaml`, but problems found after parsing (duplicate keys, tags, keys
    that are not text, nesting too deep) are returned in ``doc.problems`` with the offending
    values left out, so a caller can validate the rest and report every error at once.
    Syntax errors still raise :class:`SourceErrors`."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SourceErrors(
            [
                SourceError(
                    file,
                    1,
                    1,
                    f"file is larger than {MAX_BYTES // 1024} KiB; "
                    "split it or remove what is not needed",
                )
            ]
        )
    if isinstance(text, bytes):
        text = _decode(text, file)
    node = _compose(text, file)
    doc = YamlDocument(file=file, data=None)
    if node is not None:
        doc.data = _build(node, (), doc, _StrictLoader(""), doc.problems, 0)
    return doc


def _compose(text: str, file: str) -> Node | None:
    old_limit = sys.getrecursionlimit()
    loader: _StrictLoader | None = None
    try:
        sys.setrecursionlimit(max(old_limit, 4000))
        loader = _StrictLoader(text)
        node: Node | None = loader.get_single_node()
        return node
    except yaml.reader.ReaderError as exc:
        line, column = _text_position(text, exc.position)
        raise SourceErrors([SourceError(file, line, column, _bad_character(exc))]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _mark(mark) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if "expected a single document" in str(exc.context or ""):
            problem = "only one YAML document is allowed (remove the second '---')"
        raise SourceErrors([SourceError(file, line, column, _plain(problem))]) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise SourceErrors([SourceError(file, 1, 1, f"invalid YAML: {first}")]) from None
    except RecursionError:
        raise SourceErrors([SourceError(file, 1, 1, "nesting is too deep")]) from None
    finally:
        sys.setrecursionlimit(old_limit)
        if loader is not None:
            loader.dispose()


def _text_position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _bad_character(exc: yaml.reader.ReaderError) -> str:
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or " ")
    if code == 0:
        return "NUL byte (U+0000) in the file; is this a binary file?"
    return f"control character U+{code:04X} is not allowed in YAML; is this a text file?"


def _decode(raw: bytes, file: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise SourceErrors(
            [SourceError(file, line, column, "not UTF-8 text; is this a YAML file?")]
        ) from None


# Tags the implicit resolver produces; any other tag was written explicitly in the file.
_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
}
_VALUE_TAG = "tag:yaml.org,2002:value"


def _shown_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:") else tag


def _plain(problem: str) -> str:
    if "found character '\\t'" in problem:
        return "tab characters cannot indent YAML; use spaces"
    if problem == "mapping values are not allowed here":
        return (
            "mapping values are not allowed here; check this line's indentation, "
            "or quote a value that contains ': '"
        )
    if "special characters are not allowed" in problem:
        return "control characters are not allowed; is this a text file?"
    return problem


def _build(
    node: Node,
    path: Path_,
    doc: YamlDocument,
    loader: yaml.SafeLoader,
    errors: list[SourceError],
    depth: int,
) -> Any:
    doc.positions[path] = _mark(node)
    if depth > MAX_DEPTH:
        errors.append(SourceError(doc.file, *_mark(node), "nesting is too deep"))
        doc.damaged.add(path)
        return None
    if node.tag == _VALUE_TAG:
        # A bare `=` is YAML 1.1's "value" key; here it can only mean the text "=".
        return str(node.value)
    if node.tag not in _PLAIN_TAGS:
        errors.append(
            SourceError(
                doc.file,
                *_mark(node),
                f"tag {_shown_tag(node.tag)} is not allowed; write a plain value",
            )
        )
        doc.damaged.add(path)
        return None
    if isinstance(node, ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = str(exc).splitlines()[0]
            if "digits" in reason:
                reason = "the number has too many digits"
            errors.append(SourceError(doc.file, *_mark(node), f"cannot read this value: {reason}"))
            doc.damaged.add(path)
            return None
    if isinstance(node, SequenceNode):
        return [
            _build(child, (*path, i), doc, loader, errors, depth + 1)
            for i, child in enumerate(node.value)
        ]
    if isinstance(node, MappingNode):
        return _build_mapping(node, path, doc, loader, errors, depth)
    errors.append(SourceError(doc.file, *_mark(node), "unsupported YAML node"))
    doc.damaged.add(path)
    return None


def _build_mapping(
    node: MappingNode,
    path: Path_,
    doc: YamlDocument,
    loader: yaml.SafeLoader,
    errors: list[SourceError],
    depth: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    first_seen: dict[str, tuple[int, int]] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            errors.append(
                SourceError(doc.file, *_mark(key_node), "merge keys (<<) are not allowed")
            )
            continue
        if isinstance(key_node, ScalarNode) and key_node.tag == "tag:yaml.org,2002:bool":
            # YAML 1.1 reads a bare `on:` or `no:` key as a boolean; our keys are always names.
            key_node = ScalarNode(
                "tag:yaml.org,2002:str", key_node.value, key_node.start_mark, key_node.end_mark
            )
        if not isinstance(key_node, ScalarNode):
            errors.append(
                SourceError(
                    doc.file,
                    *_mark(key_node),
                    "a list or mapping cannot be a key; keys must be plain names",
                )
            )
            continue
        if key_node.tag != "tag:yaml.org,2002:str":
            errors.append(
                SourceError(
                    doc.file,
                    *_mark(key_node),
                    f"key {key_node.value!r} is not a plain name; keys must be text (quote it)",
                )
            )
            continue
        key = str(key_node.value)
        if key in first_seen:
            line, _ = first_seen[key]
            errors.append(
                SourceError(
                    doc.file, *_mark(key_node), f"duplicate key {key!r} (first set on line {line})"
                )
            )
            continue
        first_seen[key] = _mark(key_node)
        doc.key_positions[(*path, key)] = _mark(key_node)
        out[key] = _build(value_node, (*path, key), doc, loader, errors, depth + 1)
    return out


def walk(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) pair in a loaded document, depth first."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from walk(value, (*path, index))
