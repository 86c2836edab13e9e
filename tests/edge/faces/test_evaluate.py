"""The evaluation harness on the built-in pairs of the real test photos, and its arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.faces.backends import SPECS
from edge.faces.evaluate import (
    CURVE_RGB,
    Evaluation,
    PairsError,
    builtin_pairs,
    equal_error_rate,
    evaluate,
    rates,
    read_pairs,
    validated_floor,
    write_report,
)
from edge.faces.types import FaceBackend


@pytest.fixture(scope="module")
def builtin_result(face_backend: FaceBackend, face_photos: dict[str, str]) -> Evaluation:
    photos = {k: Path(v) for k, v in face_photos.items()}
    return evaluate(builtin_pairs(photos), face_backend)


def test_builtin_pairs_shape(face_photos: dict[str, str]) -> None:
    pairs = builtin_pairs({k: Path(v) for k, v in face_photos.items()})
    genuine = [p for p in pairs if p.same]
    assert len(genuine) == 3  # obama x obama2 x obama3
    # 7 other people (biden + 6 group faces): 3 * 7 obama-vs-other + C(7, 2) among them
    assert len(pairs) - len(genuine) == 21 + 21
    assert len({(p.a, p.b) for p in pairs}) == len(pairs)


def test_default_threshold_matches_every_same_person_pair_and_no_other(
        builtin_result: Evaluation, face_backend: FaceBackend) -> None:
    r = builtin_result
    assert r.skipped == []  # the group photo gave its six faces
    assert (r.n_genuine, r.n_impostor) == (3, 42)
    assert min(r.genuine_scores) >= face_backend.default_threshold
    assert max(r.impostor_scores) < face_backend.default_threshold
    assert r.eer == 0.0


def test_the_backend_floor_is_at_or_above_the_validated_floor(builtin_result: Evaluation,
                                                              face_backend: FaceBackend) -> None:
    assert builtin_result.floor is not None
    assert face_backend.floor >= builtin_result.floor
    assert face_backend.floor == SPECS["yunet-sface"].floor
    assert "rule of three" in builtin_result.caveat() and "42 impostor" in builtin_result.caveat()


def test_report_files_and_roc_png(builtin_result: Evaluation, tmp_path: Path) -> None:
    files = write_report(builtin_result, tmp_path / "out")
    summary = json.loads(files["summary"].read_text(encoding="utf-8"))
    assert summary["validated_floor"] == builtin_result.floor
    assert len(summary["thresholds"]) == 101
    assert files["rates"].read_text(encoding="utf-8").startswith("threshold,fmr,fnmr")
    with Image.open(files["roc"]) as img:
        assert img.format == "PNG" and img.size == (480, 480)
        pixels = np.asarray(img.convert("RGB"))
    curve = np.all(pixels == np.array(CURVE_RGB, dtype=np.uint8), axis=2)
    # a perfect separation hugs the left and top edges: many curve pixels, on both
    assert curve.sum() > 500
    ys, xs = np.nonzero(curve)
    assert xs.min() < 60 and ys.min() < 60 and xs.max() > 400


def test_rates_and_floor_arithmetic() -> None:
    genuine = [0.9, 0.8, 0.35]
    impostor = [0.1, 0.2, 0.3, 0.5]
    rows = {r.threshold: r for r in rates(genuine, impostor)}
    assert rows[0.0].fmr == 1.0 and rows[0.0].fnmr == 0.0
    assert rows[0.3].false_matches == 2 and rows[0.3].false_non_matches == 0
    assert rows[0.4].fmr == 0.25 and rows[0.4].fnmr == pytest.approx(1 / 3)
    assert rows[0.51].fmr == 0.0
    assert validated_floor(list(rows.values())) == 0.51
    assert validated_floor(list(rows.values()), target_fmr=0.25) == 0.31
    eer, at = equal_error_rate(list(rows.values()))
    assert 0.0 < eer < 0.34 and 0.3 < at <= 0.51
    # no threshold separates an impostor scoring 1.0
    assert validated_floor(rates([0.5], [1.0])) is None


def test_read_pairs_resolves_paths_and_refuses_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "pairs.csv"
    good.write_text("path_a,path_b,same\na.jpg,b.jpg#2,1\n/abs/c.jpg,d.jpg,0\n",
                    encoding="utf-8")
    pairs = read_pairs(good)
    assert pairs[0].a == str(tmp_path / "a.jpg") and pairs[0].b == str(tmp_path / "b.jpg") + "#2"
    assert pairs[1].a == "/abs/c.jpg" and not pairs[1].same
    for text, needle in (("a,b,c\n", "header"), ("path_a,path_b,same\n", "no pairs"),
                         ("path_a,path_b,same\na.jpg,b.jpg,yes\n", "line 2"),
                         ("path_a,path_b,same\na.jpg,,1\n", "line 2")):
        bad = tmp_path / "bad.csv"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(PairsError, match=needle):
            read_pairs(bad)
    with pytest.raises(PairsError, match="cannot read"):
        read_pairs(tmp_path / "missing.csv")


def test_eval_cli_on_a_pairs_file(tmp_path: Path, face_models: None,
                                  face_photos: dict[str, str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("path_a,path_b,same\n"
                     f"{face_photos['obama']},{face_photos['obama2']},1\n"
                     f"{face_photos['obama']},{face_photos['biden']},0\n"
                     f"{face_photos['obama']},{face_photos['biden']}#7,0\n", encoding="utf-8")
    assert main(["faces", "eval", "--pairs", str(pairs), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr()
    assert "1 genuine, 1 impostor pairs" in out.out
    assert "validated floor (FMR <= 0.0)" in out.out and "rule of three" in out.out
    assert "#7" in out.out  # the missing face is reported, its pair skipped
    assert "scored 3/3 pairs" in out.err  # progress goes to stderr
    assert (tmp_path / "o" / "roc.png").is_file()
    assert main(["faces", "eval", "--pairs", str(tmp_path / "nope.csv"),
                 "--out", str(tmp_path / "o")]) == 2
