"""What onnxruntime actually runs: the op types of its optimized graph.

The point of folding the preprocessing is that onnxruntime can keep the whole convolution
stack in int8 NHWC. Whether it did is a property of its optimized graph, not of our file, so
the export asks onnxruntime for that graph and counts what sits between the first and the
last convolution.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import onnx

CONV_OPS = frozenset({"Conv", "QLinearConv", "FusedConv", "NhwcFusedConv", "NhwcConv"})
# Layout or precision changes that would mean the int8 stack is broken up.
INTRUDERS = frozenset(
    {"Transpose", "Cast", "QuantizeLinear", "DequantizeLinear", "ReorderInput", "ReorderOutput"}
)


def optimized_ops(path: str | Path) -> list[str]:
    """Op types, in order, of the graph onnxruntime builds from ``path`` on this CPU."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        options.log_severity_level = 3  # its "hardware-specific graph" warning is expected here
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
        return [node.op_type for node in graph.node]


def stack_report(ops: list[str]) -> dict[str, object]:
    """Counts of all ops, and the intruders found between the first and last convolution."""
    convs = [i for i, op in enumerate(ops) if op in CONV_OPS]
    inside = ops[convs[0] : convs[-1] + 1] if convs else []
    return {
        "ops": dict(sorted(Counter(ops).items())),
        "convolutions": len(convs),
        "inside_stack": [op for op in inside if op in INTRUDERS],
    }
