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
    if isinstance(text, bytes):
        text = _decode(text, file)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
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
    loader = _StrictLoader(text)
    old_limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(old_limit, 4000))
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _mark(mark) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if "expected a single document" in str(exc.context or ""):
            problem = "only one YAML document is allowed (remove the second '---')"
        raise SourceErrors([SourceError(file, line, column, _plain(problem))]) from None
    except yaml.YAMLError as exc:
        raise SourceErrors([SourceError(file, 1, 1, f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise SourceErrors([SourceError(file, 1, 1, "nesting is too deep")]) from None
    finally:
        sys.setrecursionlimit(old_limit)
        loader.dispose()
    doc = YamlDocument(file=file, data=None)
    if node is None:
        return doc
    errors: list[SourceError] = []
    doc.data = _build(node, (), doc, loader, errors, 0)
    if errors:
        raise SourceErrors(errors)
    return doc


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


def _plain(problem: str) -> str:
    if "found character '\\t'" in problem:
        return "tab characters cannot indent YAML; use spaces"
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
        return None
    if isinstance(node, ScalarNode):
        if node.tag and node.tag.startswith("!") and not node.tag.startswith("!!"):
            errors.append(SourceError(doc.file, *_mark(node), f"tag {node.tag} is not allowed"))
            return None
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            errors.append(SourceError(doc.file, *_mark(node), f"bad value: {exc}"))
            return None
    if isinstance(node, SequenceNode):
        return [
            _build(child, (*path, i), doc, loader, errors, depth + 1)
            for i, child in enumerate(node.value)
        ]
    if isinstance(node, MappingNode):
        return _build_mapping(node, path, doc, loader, errors, depth)
    errors.append(SourceError(doc.file, *_mark(node), "unsupported YAML node"))
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
        if not isinstance(key_node, ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            shown = key_node.value if isinstance(key_node, ScalarNode) else "a collection"
            errors.append(
                SourceError(
                    doc.file,
                    *_mark(key_node),
                    f"key {shown!r} is not a plain name; keys must be text (quote it)",
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
