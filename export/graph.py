"""Graph walks shared by the surgery modules (export.fold, export.heatmap)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import onnx


def ancestors(nodes: Sequence[onnx.NodeProto], targets: Iterable[str]) -> set[int]:
    """Positions in ``nodes`` of the nodes that compute ``targets``, directly or through others.

    Positions rather than nodes: protobuf messages are unhashable, so they cannot go in a set.
    """
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    seen: set[int] = set()
    todo = [producer[t] for t in targets if t in producer]
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(producer[name] for name in nodes[i].input if name in producer)
    return seen
