"""Ground-truth scenarios through the real byte formats: intrusions with dwell, exact crossing
counts, no false alarm on an empty scene, corrupted streams survived with the loss counted."""

from __future__ import annotations

import pytest

from tests.edge.lidar.scenarios import config, replay, scene, walker

MODELS = ["ld06", "rplidar_a1"]


@pytest.mark.parametrize("model", MODELS)
def test_empty_scene_raises_nothing_over_a_long_run(model: str) -> None:
    duration = 180.0 if model == "ld06" else 300.0
    run = replay(scene(model, noise_m=0.02), config(model), duration)
    assert run.pipeline.scans > duration * 5
    assert run.intrusions == []
    assert run.crossings == []
    assert run.max_confirmed == 0


@pytest.mark.parametrize("model", MODELS)
def test_intrusion_needs_the_minimum_dwell(model: str) -> None:
    walkers = [
        # Hurries through the zone's southern strip: 1.5 s inside, below the 2 s dwell.
        walker("passer", (4, 1.5, 1.6), (7, 7.5, 1.6)),
        # Walks in and stays: inside from ~t=12.6 s until 20 s.
        walker("intruder", (10, 1.5, 2.5), (12, 3.5, 2.5), (13, 4.5, 2.5), (20, 4.5, 2.6),
               (22, 1.5, -1.0)),
    ]
    run = replay(scene(model, walkers=walkers), config(model), 25.0)
    assert len(run.intrusions) == 1
    event = run.intrusions[0]
    assert event.zone == "yard"
    assert 11.5 <= event.entered_t_s <= 12.3
    assert event.t_s - event.entered_t_s >= 2.0
    assert abs(event.x_m - 4.4) < 0.6 and abs(event.y_m - 2.5) < 0.6


@pytest.mark.parametrize("model", MODELS)
def test_crossing_counts_are_exact_on_scripted_walks(model: str) -> None:
    walkers = [
        walker("in-1", (4, -4.0, 0.0), (8, 0.0, 0.5)),
        walker("in-2", (9, -4.5, -2.0), (12, -0.5, -2.5)),
        walker("out-1", (13, 0.0, 2.0), (17, -4.0, 2.5)),
        # Two side by side, 1.2 m apart.
        walker("in-3", (18, -4.0, -1.0), (22, 0.0, -1.0)),
        walker("in-4", (18, -4.0, 0.4), (22, 0.0, 0.4)),
        # Walks up to the line, hesitates on it, turns back: no count.
        walker("hesitant", (23, 0.5, 1.0), (25, -1.9, 1.0), (27, -2.1, 1.1), (29, 0.5, 1.5)),
        # Crosses x = -2 beyond the line's north end (y > 4): no count.
        walker("around", (30, 0.0, 4.6), (33, -4.0, 4.6)),
        walker("out-2", (34, -0.5, -3.0), (37, -4.5, -3.0)),
    ]
    run = replay(scene(model, walkers=walkers), config(model), 39.0)
    assert dict(run.counts) == {"in": 4, "out": 2}
    assert run.pipeline.line_counts() == {"gate.in": 4, "gate.out": 2}
    assert run.intrusions == []


def test_corrupted_ld06_stream_is_survived_and_the_loss_counted() -> None:
    walkers = [walker("in-1", (4, -4.0, 0.0), (8, 0.0, 0.5)),
               walker("intruder", (9, 1.5, 2.5), (11, 4.5, 2.5), (16, 4.5, 2.6), (18, 1.5, -1.0))]
    faults = {"corrupt_rate": 0.02, "garbage_rate": 0.01, "garbage_max_bytes": 120}
    run = replay(scene("ld06", walkers=walkers, faults=faults), config("ld06"), 20.0)
    c = run.driver.counters()
    sent = run.stream.counters
    assert sent["units_corrupted"] > 50 and sent["garbage_bursts"] > 20
    assert c["crc_errors"] > 0
    # Every frame sent is either decoded or counted as dropped.
    assert c["frames"] + c["frames_dropped"] == sent["units"]
    assert c["frames_dropped"] >= sent["units_corrupted"] * 0.9
    assert len(run.intrusions) == 1
    assert dict(run.counts) == {"in": 1}


def test_corrupted_rplidar_stream_is_survived_and_the_loss_counted() -> None:
    walkers = [walker("in-1", (4, -4.0, 0.0), (8, 0.0, 0.5)),
               walker("intruder", (9, 1.5, 2.5), (11, 4.5, 2.5), (16, 4.5, 2.6), (18, 1.5, -1.0))]
    faults = {"corrupt_rate": 0.01, "garbage_rate": 0.005, "garbage_max_bytes": 40}
    run = replay(scene("rplidar_a1", walkers=walkers, faults=faults), config("rplidar_a1"), 20.0)
    c = run.driver.counters()
    sent = run.stream.counters
    assert c["crc_errors"] > 0  # check-bit failures
    lost = sent["units"] - c["samples"]
    assert lost > 0
    # The inferred count sees most losses (a corrupted distance byte passes undetected).
    assert c["samples_dropped"] >= lost * 0.7
    assert len(run.intrusions) == 1
    assert dict(run.counts) == {"in": 1}


@pytest.mark.soak
def test_empty_scene_one_hour_soak() -> None:
    run = replay(scene("ld06", noise_m=0.03), config("ld06"), 3600.0)
    assert run.intrusions == [] and run.crossings == [] and run.max_confirmed == 0
