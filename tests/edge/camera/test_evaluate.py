"""The detection-quality metric core on cases worked out by hand: greedy matching at IoU 0.5,
duplicates, ignore regions, VOC all-point AP, and the crossing comparison."""

from __future__ import annotations

import json

import pytest

from edge.camera.evaluate import (
    LABELS,
    LabelBox,
    Labels,
    LabelsError,
    average_precision,
    compare_crossings,
    load_labels,
    match_frame,
    parse_labels,
    score,
)
from edge.vision.boxes import Detection

A = (0.0, 0.0, 10.0, 20.0)
B = (100.0, 0.0, 110.0, 20.0)


def det(box: tuple[float, float, float, float], s: float) -> Detection:
    return Detection(box, s)


def test_match_takes_the_best_free_label_and_counts_duplicates_as_false() -> None:
    truth = [LabelBox(A), LabelBox(B)]
    shifted = (2.0, 0.0, 12.0, 20.0)  # IoU with A = 160 / 240 = 0.667
    m = match_frame([det(A, 0.9), det(shifted, 0.8), det(B, 0.3)], truth)
    # the lower-scored duplicate of A is false; B is found; nobody missed
    assert sorted(m.scored) == [(0.3, True), (0.8, False), (0.9, True)]
    assert m.missed == 0


def test_match_threshold_is_iou_half_inclusive() -> None:
    # a 12-wide box shifted by 4 px: inter 8 x 20, union 16 x 20 -> IoU exactly 0.5
    wide = (0.0, 0.0, 12.0, 20.0)
    half = (4.0, 0.0, 16.0, 20.0)
    just_under = (4.1, 0.0, 16.1, 20.0)
    assert match_frame([det(half, 1.0)], [LabelBox(wide)]).scored == [(1.0, True)]
    m = match_frame([det(just_under, 1.0)], [LabelBox(wide)])
    assert m.scored == [(1.0, False)] and m.missed == 1


def test_greedy_order_is_by_score_not_by_overlap() -> None:
    # the higher-scored, worse-placed detection takes the label first (VOC), the better-placed
    # one after it is then a duplicate
    loose = (0.0, 0.0, 10.0, 30.0)  # IoU 2/3
    m = match_frame([det(A, 0.4), det(loose, 0.6)], [LabelBox(A)])
    assert sorted(m.scored) == [(0.4, False), (0.6, True)]


def test_ignore_regions_cost_nothing_either_way() -> None:
    truth = [LabelBox(A), LabelBox(B, ignore=True)]
    inside_b = (101.0, 2.0, 108.0, 18.0)  # wholly inside the ignore box, IoU < 0.5
    astray = (300.0, 300.0, 310.0, 320.0)
    m = match_frame([det(inside_b, 0.9), det(astray, 0.5)], truth)
    assert m.ignored == 1
    assert m.scored == [(0.5, False)]
    assert m.missed == 1  # A missed; the ignored person B is not counted as missed
    # a detection that mostly lies outside the ignore box is still false
    half_out = (105.0, 0.0, 125.0, 20.0)  # a quarter of it inside
    assert match_frame([det(half_out, 0.9)], truth).scored == [(0.9, False)]
    # a counted label is preferred over an ignore region for the same detection
    assert match_frame([det(B, 0.9)], [LabelBox(B, ignore=True), LabelBox(B)]).scored == [
        (0.9, True)]


def test_ap_of_a_hand_worked_ranking() -> None:
    # 3 people; ranked hits T F T F: precision at each hit 1, 2/3; recall steps 1/3, 2/3
    # all-point AP = 1/3 * 1 + 1/3 * 2/3 = 5/9
    ranked = [(0.9, True), (0.8, False), (0.7, True), (0.6, False)]
    assert average_precision(ranked, 3) == pytest.approx(5 / 9)
    # order comes from the scores, not from the list
    assert average_precision(list(reversed(ranked)), 3) == pytest.approx(5 / 9)


def test_ap_uses_the_precision_envelope() -> None:
    # F T T: raw precisions at the hits 1/2, 2/3; the envelope gives the first step 2/3
    # AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3 (without the envelope it would be 7/12)
    assert average_precision([(0.9, False), (0.8, True), (0.7, True)], 2) == pytest.approx(2 / 3)


def test_ap_edge_cases() -> None:
    assert average_precision([(0.5, True), (0.4, True)], 2) == pytest.approx(1.0)
    assert average_precision([], 4) == 0.0
    assert average_precision([(0.5, False)], 4) == 0.0
    assert average_precision([(0.5, True)], 4) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="at least one"):
        average_precision([(0.5, True)], 0)


def test_score_over_frames_with_an_operating_threshold() -> None:
    labels = Labels((200, 100), {0: [LabelBox(A), LabelBox(B)], 20: [LabelBox(A)],
                                 40: [LabelBox(B, ignore=True)]})
    dets = {0: [det(A, 0.9), det(B, 0.2)], 20: [det(B, 0.7)], 40: [det(B, 0.8)]}
    all_dets = score(dets, labels)
    assert (all_dets.tp, all_dets.fp, all_dets.fn, all_dets.ignored) == (2, 1, 1, 1)
    assert all_dets.precision == pytest.approx(2 / 3)
    assert all_dets.recall == pytest.approx(2 / 3)
    # ranked 0.9 T, 0.7 F, 0.2 T over 3 people: 1/3 * 1 + 1/3 * 2/3
    assert all_dets.ap == pytest.approx(5 / 9)
    at_half = score(dets, labels, min_score=0.5)
    assert (at_half.tp, at_half.fp, at_half.fn) == (1, 1, 2)
    assert at_half.ap == pytest.approx(all_dets.ap)  # AP always sees the whole curve
    with pytest.raises(ValueError, match="without labels"):
        score({7: []}, labels)


def test_crossings_pair_by_direction_within_the_tolerance_once_each() -> None:
    labels = [(100, "left_to_right"), (200, "right_to_left"), (300, "left_to_right")]
    events = [(104, "left_to_right"), (110, "left_to_right"),  # two claims on one label
              (200, "left_to_right"),                           # wrong direction
              (330, "left_to_right")]                           # too late (30 frames)
    c = compare_crossings(events, labels, tolerance=15)
    assert (c.counted, c.labelled, c.matched) == (4, 3, 1)
    assert c.by_direction == {"left_to_right": (4, 2), "right_to_left": (0, 1)}


def test_label_file_rejects_garbage_with_a_clear_message() -> None:
    good = {"frame_size_px": [100, 50], "frames": [
        {"frame": 0, "boxes": [{"box": [1, 2, 10, 40]}, {"box": [20, 2, 30, 40],
                                                         "flag": "partial"}]}]}
    labels = parse_labels(good)
    assert labels.counted == 1 and labels.frames[0][1].ignore
    bad_box = {"frame_size_px": [100, 50], "frames": [{"frame": 0, "boxes": [
        {"box": [10, 2, 5, 40]}]}]}
    with pytest.raises(LabelsError, match="empty or outside"):
        parse_labels(bad_box)
    outside = {"frame_size_px": [100, 50], "frames": [{"frame": 0, "boxes": [
        {"box": [10, 2, 50, 51]}]}]}
    with pytest.raises(LabelsError, match="outside"):
        parse_labels(outside)
    with pytest.raises(LabelsError, match="unknown flag"):
        parse_labels({"frame_size_px": [100, 50], "frames": [{"frame": 0, "boxes": [
            {"box": [1, 2, 10, 40], "flag": "maybe"}]}]})
    with pytest.raises(LabelsError, match="twice"):
        parse_labels({"frame_size_px": [100, 50], "frames": [{"frame": 0, "boxes": []},
                                                             {"frame": 0, "boxes": []}]})
    with pytest.raises(LabelsError, match="not a label document"):
        parse_labels(json.loads('{"frames": "x"}'))


def test_the_committed_labels_are_every_20th_frame_of_vtest() -> None:
    labels = load_labels(LABELS)
    assert labels.frame_size_px == (768, 576)
    assert sorted(labels.frames) == list(range(0, 795, 20))
    assert all(labels.frames[i] for i in labels.frames)  # the scene is never empty
    assert labels.counted == 221
