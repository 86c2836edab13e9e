"""Convert NanoDet-m from its TensorFlow.js graph model to ONNX and TFLite.

Runs ONLY inside the throwaway build environment that ``gridward edge camera models build
nanodet-m`` creates (TensorFlow, tfjs-graph-converter, tf2onnx, pinned in
``models/nanodet-build-requirements.txt``); the camera agent never imports TensorFlow.

    python build_nanodet_convert.py --tfjs-json DIR/nanodet.json --out OUT [--opset 17]

Writes OUT/nanodet-m.onnx and OUT/nanodet-m.tflite. Only the well-kept converters do the work:
tfjs-graph-converter (graph model -> SavedModel), tf2onnx (SavedModel -> ONNX) and TensorFlow's
TFLite converter (built-in ops only, so plain LiteRT runs it). The one step of our own renames
the ONNX initializers that tf2onnx numbers from a process-global counter in whatever order its
optimiser visits them, and drops the temporary path tf2onnx writes into the graph's doc string:
the graph is identical from run to run, those names are not, and a file whose sha256 changes on
every build cannot be pinned.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from pathlib import Path


def say(message: str) -> None:
    print(f"[nanodet-convert] {message}", flush=True)  # noqa: T201 - progress for the operator


def keep_decision_forests_out() -> None:
    """tensorflowjs imports tensorflow_decision_forests unconditionally; the real add-on crashes
    against the protobuf TensorFlow needs, and a graph model never uses it. An empty module in
    its place keeps it off the import path (it is not installed in the build environment)."""
    sys.modules.setdefault("tensorflow_decision_forests",
                           types.ModuleType("tensorflow_decision_forests"))


def to_saved_model(tfjs_json: Path, saved: Path) -> None:
    keep_decision_forests_out()
    import tfjs_graph_converter.api as tfjs_api

    tfjs_api.graph_model_to_saved_model(str(tfjs_json), str(saved), ["serve"])


def to_onnx(saved: Path, target: Path, opset: int) -> None:
    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved),
                    "--opset", str(opset), "--output", str(target)], check=True, env=env)
    canonical_initializer_names(target)


def canonical_initializer_names(path: Path) -> None:
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    renamed: dict[str, str] = {}
    for node in graph.node:
        for name in node.input:
            if name in inits and name not in renamed:
                renamed[name] = f"const_{len(renamed)}"
    for name in sorted(inits - renamed.keys()):  # unused by any node: keep them, named stably
        renamed[name] = f"const_{len(renamed)}"
    for node in graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
    for init in graph.initializer:
        init.name = renamed[init.name]
    ordered = sorted(graph.initializer, key=lambda i: int(i.name.split("_")[1]))
    copies = [type(i)() for i in ordered]
    for copy, init in zip(copies, ordered, strict=True):
        copy.CopyFrom(init)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    graph.doc_string = "NanoDet-m, converted by tf2onnx from the TensorFlow.js graph model"
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString(deterministic=True))


def to_tflite(saved: Path, target: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    target.write_bytes(converter.convert())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfjs-json", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "saved_model"
    steps = (
        ("TensorFlow.js graph -> SavedModel (tfjs-graph-converter)",
         lambda: to_saved_model(args.tfjs_json, saved)),
        (f"SavedModel -> ONNX opset {args.opset} (tf2onnx)",
         lambda: to_onnx(saved, args.out / "nanodet-m.onnx", args.opset)),
        ("SavedModel -> TFLite, built-in ops only (TFLiteConverter)",
         lambda: to_tflite(saved, args.out / "nanodet-m.tflite")),
    )
    for i, (what, step) in enumerate(steps, 1):
        started = time.monotonic()
        say(f"step {i}/{len(steps)}: {what} ...")
        step()
        say(f"step {i}/{len(steps)} done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
