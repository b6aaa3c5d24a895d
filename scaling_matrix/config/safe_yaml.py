"""Read a YAML config file defensively: size cap, strict UTF-8, nesting and alias-expansion caps,
duplicate keys rejected, only plain data types. Errors name the file, line and column, never the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from scaling_matrix.errors import ConfigError
from scaling_matrix.config.secrets import shown

MAX_BYTES = 256 * 1024  #: the workshop matrix is ~5 KB
MAX_DEPTH = 32  #: mappings/lists nested deeper than this are rejected before they are built
MAX_NODES = 50_000  #: nodes after alias expansion (an alias bomb expands to billions)


def read_text(path: Path, origin: str) -> str:
    """Return the UTF-8 text of ``path`` (at most ``MAX_BYTES``); ConfigError otherwise."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(origin, f"cannot be read ({exc.strerror or type(exc).__name__})",
                          "pass a readable YAML file") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(origin, f"is larger than {MAX_BYTES // 1024} KiB",
                          "a matrix or profile is a few KB: check that this is the right file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(origin, f"is not UTF-8 text (bad byte at line {line})",
                          "save the file as UTF-8") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys in a mapping."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, list | dict | set):
                raise _Problem(f"has a list or mapping as a key at line {line}", "use plain text keys")
            if key in seen:
                raise _Problem(f"has the key '{shown(str(key))}' twice in one mapping (line {line})",
                               "keep one entry per key")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Problem(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def _check_depth(text: str) -> None:
    """Raise _Problem when collections nest deeper than MAX_DEPTH (checked on the event stream)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Problem(f"nests deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1})",
                               "flatten the structure")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: Node) -> None:
    """Raise _Problem when aliases would expand ``root`` past MAX_NODES nodes (or form a cycle)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, MappingNode)
                    else list(node.value) if isinstance(node, SequenceNode) else [])
        if children_done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            open_nodes.discard(id(node))
            if sizes[id(node)] > MAX_NODES:
                raise _Problem(f"expands to more than {MAX_NODES} values through aliases (&anchor/*alias)",
                               "use fewer or smaller aliases")
            continue
        if id(node) in open_nodes:
            raise _Problem("has an alias that contains itself", "remove the recursive alias")
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def load_yaml(text: str, origin: str) -> Any:
    """Return the plain data of ``text`` (dicts, lists, scalars); ConfigError naming ``origin`` otherwise."""
    try:
        _check_depth(text)
        root = yaml.compose(text, Loader=_Loader)
        if root is None:
            return None
        _check_expansion(root)
        loader = _Loader("")
        try:
            return loader.construct_document(root)
        finally:
            loader.dispose()
    except _Problem as exc:
        raise ConfigError(origin, exc.problem, exc.fix) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(origin, f"is not valid YAML{where}: {shown(str(exc.problem or exc.context), 80)}",
                          "fix the YAML syntax there") from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        raise ConfigError(origin, f"is not valid YAML ({type(exc).__name__})", "fix the YAML syntax") from None
