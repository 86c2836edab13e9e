"""The deadline configuration refuses nonsense with a sentence that says what to fix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from hub.incidents.config import IncidentsConfig
from hub.incidents.deadline_config import DeadlinesConfig
from hub.incidents.model import IncidentLevel


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"hours_by_level": {"low": -1, "medium": 1, "high": 1, "critical": 1}}, "greater than 0"),
        ({"hours_by_level": {"low": 0, "medium": 1, "high": 1, "critical": 1}}, "greater than 0"),
        ({"hours_by_level": {"low": 1, "medium": 1, "high": 1}}, "missing: critical"),
        (
            {"hours_by_level": {"low": 1, "medium": 1, "high": 1, "critical": 1, "extreme": 1}},
            "extreme",
        ),
        ({"category_hours": {"garbage": {"urgent": 2}}}, "urgent"),
        ({"category_hours": {"garbage": {"high": -2}}}, "greater than 0"),
        ({"reminder_min_minutes": 90}, "longer than the deadline itself (1 h for level critical)"),
        ({"category_hours": {"noise": {"low": 0.1}}}, "category noise level low"),
        ({"reminder_fraction": 1}, "less than 1"),
        ({"reminder_fraction": 0}, "greater than 0"),
        ({"reminder_min_minutes": -5}, "greater than or equal to 0"),
        ({"commander_after_min": 0}, "greater than 0"),
        ({"sweep_every_s": 0}, "greater than 0"),
        ({"hours_by_level": {"low": 1e9, "medium": 1, "high": 1, "critical": 1}}, "less than"),
        ({"remind_before": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_deadline_configs_are_refused(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        DeadlinesConfig.model_validate(values)


def test_an_override_for_an_unknown_category_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown categories: garbag"):
        IncidentsConfig.model_validate({"deadlines": {"category_hours": {"garbag": {"low": 5}}}})


def test_overrides_fall_back_per_level() -> None:
    cfg = DeadlinesConfig(category_hours={"garbage": {"high": 2}})
    assert cfg.duration("garbage", IncidentLevel.HIGH) == timedelta(hours=2)
    assert cfg.duration("garbage", IncidentLevel.LOW) == timedelta(hours=72)
    assert cfg.duration("noise", IncidentLevel.HIGH) == timedelta(hours=4)


def test_the_reminder_lead_is_a_share_with_a_floor() -> None:
    cfg = DeadlinesConfig(reminder_fraction=0.25, reminder_min_minutes=30)
    assert cfg.reminder_lead(timedelta(hours=24)) == timedelta(hours=6)
    assert cfg.reminder_lead(timedelta(hours=1)) == timedelta(minutes=30)
