"""The dependency graph: what a subscription uses and what uses it, transitively."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class GraphNode:
    id: str
    children: list[GraphNode] = field(default_factory=list)


def tree(start: str, edges: Mapping[str, list[str]], *, max_depth: int = 10) -> GraphNode:
    """Walk ``edges`` (id -> neighbour ids) from ``start``; a cycle is cut, not looped."""

    def walk(node: str, seen: frozenset[str], depth: int) -> GraphNode:
        out = GraphNode(node)
        if depth >= max_depth:
            return out
        for nxt in sorted(edges.get(node, [])):
            if nxt not in seen:
                out.children.append(walk(nxt, seen | {nxt}, depth + 1))
        return out

    return walk(start, frozenset({start}), 0)


def transitive(start: str, edges: Mapping[str, list[str]]) -> list[str]:
    """Every id reachable from ``start`` (breadth first, without ``start``)."""
    seen: dict[str, None] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for n in sorted(edges.get(node, [])):
                if n != start and n not in seen:
                    seen[n] = None
                    nxt.append(n)
        frontier = nxt
    return list(seen)
