"""A schema's subschemas, the error naming where a schema cannot be compiled, and the check that
its `$ref`s can run: each points inside the schema itself (nothing is ever fetched), at a
subschema, none leads back to where it started (one that never descends into the value would
recurse until the stack gives out), and expanding them all stays small (shared definitions that
each use the next twice would make validation exponential)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012


class SchemaCompileError(ValueError):
    """The schema cannot be compiled (e.g. a bad regular expression); `path` is inside it."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


def join_path(*parts: str) -> str:
    """A path inside a schema or an event, dot-separated: `properties.total.type`."""
    return ".".join(part for part in parts if part)


# Draft 2020-12 keywords whose value is a subschema, a list of them, or an object of them.
SUBSCHEMA = (
    "additionalProperties",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Schema parts with every `$ref` expanded in place. A schema of 64 KiB without references has
# fewer than ~10,000; the bound leaves room for definitions used several times.
MAX_EXPANDED_PARTS = 20_000
RECURSION = "recursive schemas are not supported (validating would never end)"


def subschemas(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object subschema (the schema first) with its path: `properties.a.items`."""
    stack = [(path, schema)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            yield where, node
            stack.extend(children(node, where))


def children(node: dict[str, Any], where: str = "") -> Iterator[tuple[str, Any]]:
    """The subschemas directly inside `node` (objects or booleans), with their paths."""
    for keyword in SUBSCHEMA:
        if keyword in node:
            yield join_path(where, keyword), node[keyword]
    for keyword in SUBSCHEMA_LISTS:
        if isinstance(node.get(keyword), list):
            for index, item in enumerate(node[keyword]):
                yield join_path(where, keyword, str(index)), item
    for keyword in SUBSCHEMA_MAPS:
        if isinstance(node.get(keyword), dict):
            for key, item in node[keyword].items():
                yield join_path(where, keyword, str(key)), item


def check_references(schema: Any) -> None:
    """Raise `SchemaCompileError` (at the `$ref`) unless every reference can run."""
    if not isinstance(schema, dict):
        return
    resource = DRAFT202012.create_resource(schema)
    base = resource.id() or ""
    resolver = Registry().with_resource(base, resource).resolver(base)
    nodes = list(subschemas(schema))
    paths = {id(node): where for where, node in nodes}
    # Per subschema (by id): the subschemas inside it, then its reference's target; each with
    # whether it is reached by a $ref.
    edges: dict[int, list[tuple[int, bool]]] = {}
    for where, node in nodes:
        if where and "$id" in node:
            raise SchemaCompileError(
                join_path(where, "$id"),
                "embedded schemas ($id below the root) are not supported; use $defs",
            )
        if "$dynamicRef" in node:
            raise SchemaCompileError(join_path(where, "$dynamicRef"), "is not supported; use $ref")
        edges[id(node)] = [(id(c), False) for _, c in children(node) if isinstance(c, dict)]
        if "$ref" not in node:
            continue
        ref_path = join_path(where, "$ref")
        target = _resolve(resolver, node["$ref"], ref_path)
        if isinstance(target, dict):
            if id(target) not in paths:
                raise SchemaCompileError(
                    ref_path, "does not point at a subschema (put shared definitions in $defs)"
                )
            edges[id(node)].append((id(target), True))
        elif not isinstance(target, bool):
            raise SchemaCompileError(ref_path, "does not point at a schema")
    _check_graph(id(schema), edges, paths)


def _resolve(resolver: Any, ref: Any, where: str) -> Any:
    if not isinstance(ref, str):
        raise SchemaCompileError(where, "must be a string")
    if not ref.startswith("#"):
        raise SchemaCompileError(
            where,
            "only references inside this schema (#/$defs/...) are supported; other schemas "
            "are never fetched",
        )
    try:
        return resolver.lookup(ref).contents
    except Unresolvable:
        raise SchemaCompileError(where, f"{ref} points at nothing in this schema") from None


def _check_graph(
    root: int, edges: dict[int, list[tuple[int, bool]]], paths: dict[int, str]
) -> None:
    """Depth first from the root: a reference back to a subschema being expanded is a cycle;
    sizes are summed as subschemas finish, each once."""
    size: dict[int, int] = {}
    # The path being expanded: (subschema, whether it was reached by a $ref, its next edge).
    trail: list[tuple[int, bool, Iterator[tuple[int, bool]]]] = [(root, False, iter(edges[root]))]
    on_trail = {root: 0}
    while trail:
        node, _, following = trail[-1]
        step = next(following, None)
        if step is None:
            trail.pop()
            del on_trail[node]
            size[node] = 1 + sum(size[child] for child, _ in edges[node])
            if size[node] > MAX_EXPANDED_PARTS:
                where = paths[node]
                raise SchemaCompileError(
                    where,
                    f"has more than {MAX_EXPANDED_PARTS} parts with its $refs expanded "
                    "(definitions that reference others several times multiply)",
                )
            continue
        child, by_ref = step
        if child in on_trail:
            raise _cycle(trail[on_trail[child] :], node, by_ref, child, paths)
        if child not in size:
            on_trail[child] = len(trail)
            trail.append((child, by_ref, iter(edges[child])))


def _cycle(
    loop: list[tuple[int, bool, Iterator[tuple[int, bool]]]],
    last: int,
    last_by_ref: bool,
    start: int,
    paths: dict[int, str],
) -> SchemaCompileError:
    """The error for a cycle, at the first `$ref` along it."""
    sources = [(loop[i - 1][0], by_ref) for i, (_, by_ref, _) in enumerate(loop) if i > 0]
    sources.append((last, last_by_ref))
    source = next((node for node, by_ref in sources if by_ref), last)
    target = paths[start] or "the whole schema"
    return SchemaCompileError(
        join_path(paths[source], "$ref"), f"leads back to {target}, which contains it: {RECURSION}"
    )
