"""The face models on onnxruntime: one thread's session options, and exact rewrites of a
graph before onnxruntime loads it: the same function, computed faster. Each rewrite keeps every
output equal up to float32 rounding (tests check the embedding), so the model keeps its name
and its embedding space; nothing derived is written to disk.

- :func:`drop_weight_inputs`: SFace lists its weights as graph inputs as well as
  initialisers, so onnxruntime must treat them as overridable and cannot fold batch norms
  into the convolutions.
- :func:`prelu_as_relu`: onnxruntime's CPU ``PRelu`` is a generic broadcasting kernel outside
  its blocked (NCHWc) convolution layout: on SFace's 27 PRelus it cost about as much as all 27
  convolutions, plus a layout reorder around each. ``a*x + (1-a)*relu(x)`` is the same
  function for any slope ``a`` (x > 0: ax + (1-a)x = x; x <= 0: ax + 0), and onnxruntime turns
  the constant per-channel multiplies and the add into fused blocked convolutions, so the
  graph stays in one layout. (``max(x, a*x)`` would be one op fewer but is only PRelu for
  0 <= a <= 1; SFace's slopes run from -0.81 to 1.12.)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def session_options(threads: int) -> Any:
    """CPU session options on ``threads`` intra-op threads, quiet (SFace alone would warn once
    per weight it lists as an input)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def drop_weight_inputs(model: Any) -> int:
    """Removes from ``model``'s graph inputs every name that is also an initialiser; returns
    how many were removed."""
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    removed = len(graph.input) - len(inputs)
    if removed:
        del graph.input[:]
        graph.input.extend(inputs)
    return removed


def prelu_as_relu(model: Any) -> int:
    """Replaces, in place, each ``PRelu`` whose slope is a float32 initialiser by
    ``a*x + (1-a)*relu(x)``; returns how many were replaced. A PRelu whose slope is computed
    or overridable at run time (a graph input) is left as it is."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    overridable = {i.name for i in graph.input}
    slopes = {init.name: init for init in graph.initializer
              if init.name not in overridable and init.data_type == TensorProto.FLOAT}
    taken = ({init.name for init in graph.initializer} | {i.name for i in graph.input}
             | {o for node in graph.node for o in node.output})

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    nodes: list[Any] = []
    replaced = 0
    for node in graph.node:
        if node.op_type != "PRelu" or node.domain not in ("", "ai.onnx") \
                or node.input[1] not in slopes:
            nodes.append(node)
            continue
        x, slope, y = node.input[0], node.input[1], node.output[0]
        a = numpy_helper.to_array(slopes[slope]).astype(np.float32)
        one_minus = fresh(f"{slope}_one_minus")
        graph.initializer.append(numpy_helper.from_array(np.float32(1.0) - a, one_minus))
        relu, scaled_relu, scaled_x = fresh(f"{y}_relu"), fresh(f"{y}_relu_scaled"), \
            fresh(f"{y}_x_scaled")
        nodes.extend((helper.make_node("Relu", [x], [relu], name=fresh(f"{node.name}_relu")),
                      helper.make_node("Mul", [relu, one_minus], [scaled_relu],
                                       name=fresh(f"{node.name}_relu_mul")),
                      helper.make_node("Mul", [x, slope], [scaled_x],
                                       name=fresh(f"{node.name}_x_mul")),
                      helper.make_node("Add", [scaled_x, scaled_relu], [y],
                                       name=fresh(f"{node.name}_add"))))
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(nodes)
    return replaced


__all__ = ["drop_weight_inputs", "prelu_as_relu", "session_options"]
