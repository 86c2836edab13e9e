"""The shared ranging and trilateration maths (used by the gateway and by hub fusion)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.positioning import Calibration, RangeReading, locate, trilaterate

SQUARE = [(0.0, 0.0), (100.0, 0.0), (100.0, 70.0), (0.0, 70.0)]


@given(tx=st.floats(-90, -30), n=st.floats(1.5, 5.0), d=st.floats(0.2, 500))
def test_calibration_round_trip(tx: float, n: float, d: float) -> None:
    cal = Calibration(tx, n)
    assert cal.distance_m(cal.rssi_dbm(d)) == pytest.approx(d, rel=1e-9)


def test_distance_sigma_grows_with_distance_and_shadowing() -> None:
    cal = Calibration(-59, 2.0)
    assert cal.distance_sigma_m(10, 4) < cal.distance_sigma_m(40, 4)
    assert cal.distance_sigma_m(10, 2) < cal.distance_sigma_m(10, 4)
    # 1 dB at n=2 is a factor 10^(1/20): about 11.5 % of the distance
    assert cal.distance_sigma_m(100, 1) == pytest.approx(11.51, abs=0.01)


@settings(max_examples=200, deadline=None)
@given(x=st.floats(5, 95), y=st.floats(5, 65), n=st.floats(1.8, 3.5))
def test_noiseless_rssi_recovers_the_point_inside_the_hull(x: float, y: float, n: float) -> None:
    cal = Calibration(-59, n)
    readings = [RangeReading(ax, ay, cal.rssi_dbm(math.hypot(x - ax, y - ay)), cal, 3.0)
                for ax, ay in SQUARE]
    est = locate(readings)
    assert est.method == "trilateration"
    assert math.hypot(est.x - x, est.y - y) < 0.5


def test_each_receiver_uses_its_own_calibration() -> None:
    truth = (30.0, 20.0)
    cals = [Calibration(-59, 2.0), Calibration(-65, 2.6), Calibration(-55, 3.1),
            Calibration(-62, 2.2)]
    readings = [RangeReading(ax, ay, c.rssi_dbm(math.hypot(truth[0] - ax, truth[1] - ay)), c, 3)
                for (ax, ay), c in zip(SQUARE, cals, strict=True)]
    est = locate(readings)
    assert math.hypot(est.x - truth[0], est.y - truth[1]) < 0.5
    # the same RSSI read with one calibration for all is biased
    wrong = locate([RangeReading(r.x, r.y, r.rssi_dbm, Calibration(), 3) for r in readings])
    assert math.hypot(wrong.x - truth[0], wrong.y - truth[1]) > 3


def test_accuracy_reflects_inconsistent_ranges() -> None:
    anchors = np.array(SQUARE)
    truth = np.array([50.0, 35.0])
    exact = np.hypot(*(anchors - truth).T)
    good = trilaterate(anchors, exact, np.full(4, 2.0))
    bad = trilaterate(anchors, exact * np.array([1.0, 1.8, 0.5, 1.3]), np.full(4, 2.0))
    assert good.accuracy_m < bad.accuracy_m
    assert bad.accuracy_m >= 0.5


def test_too_few_readings_refused() -> None:
    cal = Calibration()
    with pytest.raises(ValueError, match="three or more"):
        locate([RangeReading(0, 0, -60, cal, 3), RangeReading(10, 0, -60, cal, 3)])
    with pytest.raises(ValueError, match="three or more"):
        trilaterate(np.zeros((3, 2)), np.ones(2), np.ones(3))
