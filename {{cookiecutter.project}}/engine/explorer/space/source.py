"""Safe YAML loading that remembers where every key and value came from.

PyYAML's safe composer builds a node tree with marks; we turn it into plain dicts and
lists ourselves so that (1) no tag other than the YAML core schema is ever constructed,
(2) alias expansion is bounded (a "billion laughs" file fails fast), (3) duplicate keys are
errors instead of silently overwritten, and (4) every key and value keeps its line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import Diagnostic

MAX_BYTES = 1 << 20
MAX_NODES = 50_000  # after alias expansion; a real search space has a few hundred
CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str")}
COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

Mark = tuple[int, int]  # 1-based line and column


class LocDict(dict):
    """A mapping that knows the position of each key and of each value."""

    def __init__(self, mark: Mark):
        super().__init__()
        self.mark = mark
        self.key_marks: dict[Any, Mark] = {}
        self.value_marks: dict[Any, Mark] = {}

    def rename(self, old: Any, new: Any) -> None:
        """Rename a key in place (legacy spellings), keeping its positions and order."""
        items = [(new if k == old else k, v) for k, v in self.items()]
        self.key_marks[new] = self.key_marks.pop(old)
        self.value_marks[new] = self.value_marks.pop(old)
        self.clear()
        self.update(items)


class LocList(list):
    """A sequence that knows the position of each item."""

    def __init__(self, mark: Mark):
        super().__init__()
        self.mark = mark
        self.value_marks: list[Mark] = []


class _Loader(yaml.SafeLoader):
    """Records where aliases are used, so an alias bomb can be reported at its first use."""

    def __init__(self, stream):
        super().__init__(stream)
        self.alias_marks: list[Mark] = []

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            self.alias_marks.append((mark.line + 1, mark.column + 1))
        return super().compose_node(parent, index)


class SourceError(Exception):
    def __init__(self, mark: Mark, message: str, hint: str | None = None):
        super().__init__(message)
        self.mark, self.message, self.hint = mark, message, hint


def _mark(node: yaml.Node) -> Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    def __init__(self, loader: _Loader):
        self.loader = loader
        self.count = 0

    def convert(self, node: yaml.Node) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            first = self.loader.alias_marks[0] if self.loader.alias_marks else (1, 1)
            raise SourceError(first, f"the file expands to more than {MAX_NODES} nodes through YAML alias use",
                              "avoid deeply nested anchors/aliases (a 'billion laughs' file)")
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in COLLECTION_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise SourceError(_mark(node), f"unsupported YAML tag '{tag}'",
                              "search spaces are plain YAML; python objects and other tags are never constructed")
        if isinstance(node, yaml.MappingNode):
            out = LocDict(_mark(node))
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SourceError(_mark(key_node), "a mapping key must be a plain name, not a list or mapping")
                key = self.convert(key_node)
                if key in out:
                    raise SourceError(_mark(key_node), f"duplicate key '{key}'", "each key may appear once per mapping")
                out.key_marks[key] = _mark(key_node)
                out.value_marks[key] = _mark(value_node)
                out[key] = self.convert(value_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            seq = LocList(_mark(node))
            for item in node.value:
                seq.value_marks.append(_mark(item))
                seq.append(self.convert(item))
            return seq
        if node.tag not in CORE_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise SourceError(_mark(node), f"unsupported YAML tag '{tag}'",
                              "search spaces are plain YAML; python objects and other tags are never constructed")
        try:
            return self.loader.construct_object(node)
        except (ValueError, TypeError, IndexError, KeyError, yaml.YAMLError):  # an explicit tag on text not of its type
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise SourceError(_mark(node), f"'{node.value}' cannot be read as {tag}", "remove the tag") from None


def load_yaml(path: str | Path, text: str | None = None) -> Any:
    """Parse ``path`` (or ``text``) into LocDict/LocList/scalars; raise ``Diagnostic`` lists on failure."""
    name = str(path)
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise DiagnosticsError([Diagnostic(name, 1, 1, f"cannot read file: {exc.strerror or exc}")]) from None
        if len(raw) > MAX_BYTES:
            raise DiagnosticsError([Diagnostic(name, 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB",
                                               "a search space is a small text file")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DiagnosticsError([Diagnostic(name, 1, 1, f"file is not UTF-8 text ({exc.reason})")]) from None
    loader = None
    try:
        loader = _Loader(text)  # the reader rejects non-printable characters right here
        node = loader.get_single_node()
        if node is None:
            raise SourceError((1, 1), "empty file", "a search space needs at least input, output and sequence")
        if not isinstance(node, yaml.MappingNode):
            kind = "list" if isinstance(node, yaml.SequenceNode) else "single value"
            raise SourceError(_mark(node), f"the file must be a mapping of keys, got a {kind}",
                              "start with keys such as 'input:', 'output:', 'sequence:'")
        return _Converter(loader).convert(node)
    except SourceError as exc:
        raise DiagnosticsError([Diagnostic(name, *exc.mark, exc.message, exc.hint)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(filter(None, [exc.context, exc.problem])).replace("\t", "\\t")
        raise DiagnosticsError([Diagnostic(name, line, col, f"YAML syntax error: {problem}",
                                           "check indentation (spaces, not tabs) and brackets")]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        raise DiagnosticsError([Diagnostic(name, line, col, f"YAML syntax error: {exc.reason} "
                                           f"(character {exc.character!r})", "remove the character")]) from None
    except yaml.YAMLError as exc:
        raise DiagnosticsError([Diagnostic(name, 1, 1, f"YAML syntax error: {exc}")]) from None
    except RecursionError:
        raise DiagnosticsError([Diagnostic(name, 1, 1, "YAML syntax error: nesting is too deep")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _position(text: str, index: int) -> Mark:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


class DiagnosticsError(Exception):
    """Diagnostics that stop validation of one file."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics


def locate(root: Any, path: tuple, *, key: bool = False) -> Mark:
    """Position of the value (or key) at ``path``; the nearest existing ancestor when it is missing."""
    node, mark = root, getattr(root, "mark", (1, 1))
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, LocDict) and part in node:
            mark = node.key_marks[part] if (last and key) else node.value_marks[part]
            node = node[part]
        elif isinstance(node, LocList) and isinstance(part, int) and 0 <= part < len(node):
            mark = node.value_marks[part]
            node = node[part]
        else:
            break
    return mark


def real_path(root: Any, loc: tuple) -> tuple:
    """``loc`` without pydantic's union/branch tags: the keys that exist in the file, plus a
    trailing missing key."""
    node, path = root, []
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and part == loc[-1]:
            path.append(part)
    return tuple(path)
