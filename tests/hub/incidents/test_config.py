"""The workflow configuration refuses nonsense at load, naming the rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hub.config import HubConfig
from hub.incidents.config import DEFAULT_ALERT_RULES, IncidentsConfig
from tests.hub.incidents.support import square

DEFAULT = {"name": "default", "department": "ops"}


def load(routing: list[dict[str, Any]] | None = None, **kw: Any) -> IncidentsConfig:
    values: dict[str, Any] = dict(kw)
    if routing is not None:
        values["routing"] = routing
    return IncidentsConfig.model_validate(values)


def refused(match: str, routing: list[dict[str, Any]] | None = None, **kw: Any) -> None:
    with pytest.raises(ValidationError, match=match):
        load(routing, **kw)


def test_defaults_load_and_end_with_a_default_rule() -> None:
    cfg = IncidentsConfig()
    assert cfg.routing[-1].when.is_empty()
    assert [r.name for r in cfg.alert_rules] == [r.name for r in DEFAULT_ALERT_RULES]
    # every category of the vocabulary is covered by a line rule before the default
    covered = {c for r in cfg.routing[:-1] for c in r.when.categories or []}
    assert covered == {c.id for c in cfg.categories}


def test_a_hub_config_takes_the_section() -> None:
    cfg = HubConfig.model_validate(
        {"site": "s1", "incidents": {"routing": [DEFAULT]}, "timezone": "Asia/Shanghai"}
    )
    assert cfg.incidents.routing[0].department == "ops"


@pytest.mark.parametrize(
    ("routing", "match"),
    [
        (
            [
                {
                    "name": "night",
                    "when": {"hours": {"from": "22:00", "to": "06:00"}},
                    "department": "a",
                }
            ],
            "'night': the last routing rule must be a default",
        ),
        (
            [DEFAULT, {"name": "late", "department": "b", "when": {"levels": ["high"]}}],
            "'default' has no conditions .* rule 'late' after it could never match",
        ),
        (
            [{"name": "never", "when": {"days": []}, "department": "a"}, DEFAULT],
            "'never': an empty list of days can never match",
        ),
        (
            [{"name": "nocat", "when": {"categories": []}, "department": "a"}, DEFAULT],
            "'nocat': an empty list of categories",
        ),
        (
            [{"name": "nocell", "when": {"cells": []}, "department": "a"}, DEFAULT],
            "'nocell': an empty list of cells",
        ),
        (
            [
                {
                    "name": "zero",
                    "when": {"hours": {"from": "08:00", "to": "08:00"}},
                    "department": "a",
                },
                DEFAULT,
            ],
            "'zero': hours from 08:00 to 08:00 is an empty window",
        ),
        (
            [{"name": "badcat", "when": {"categories": ["unicorns"]}, "department": "a"}, DEFAULT],
            "'badcat': unknown category 'unicorns'",
        ),
        (
            [{"name": "badlevel", "when": {"levels": ["apocalyptic"]}, "department": "a"}, DEFAULT],
            "levels",
        ),
        ([{"name": "badline", "line": "astrology"}], "'badline': unknown line 'astrology'"),
        (
            [{"name": "both", "department": "a", "line": "sanitation"}],
            "'both': give exactly one of department or line",
        ),
        ([{"name": "neither"}], "'neither': give exactly one of department or line"),
        (
            [
                {
                    "name": "bowtie",
                    "when": {
                        "area": {
                            "type": "Polygon",
                            "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                        }
                    },
                    "department": "a",
                },
                DEFAULT,
            ],
            "'bowtie': area: polygon is not valid",
        ),
        (
            [
                {
                    "name": "line",
                    "when": {"area": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
                    "department": "a",
                },
                DEFAULT,
            ],
            "'line': area: geometry type 'LineString'",
        ),
        (
            [
                {"name": "one", "when": {"levels": ["high"]}, "department": "a"},
                {"name": "two", "when": {"levels": ["high"]}, "department": "a"},
                DEFAULT,
            ],
            "'two': identical to the earlier rule 'one'",
        ),
        (
            [
                {"name": "dup", "when": {"levels": ["high"]}, "department": "a"},
                {"name": "dup", "department": "b"},
            ],
            "'dup': the name is used twice",
        ),
        (
            [
                {
                    "name": "mixed",
                    "when": {"levels": ["high"], "min_level": "low"},
                    "department": "a",
                },
                DEFAULT,
            ],
            "'mixed': give levels or min_level, not both",
        ),
        (
            [
                {
                    "name": "hours",
                    "when": {"hours": {"from": "25:00", "to": "06:00"}},
                    "department": "a",
                },
                DEFAULT,
            ],
            "from",
        ),
        (
            [{"name": "days", "when": {"days": ["mon", "mon"]}, "department": "a"}, DEFAULT],
            "'days': a value is listed twice in days",
        ),
        (
            [{"name": "typo", "when": {"catgories": ["garbage"]}, "department": "a"}, DEFAULT],
            "catgories",
        ),
    ],
)
def test_routing_refusals(routing: list[dict[str, Any]], match: str) -> None:
    refused(match, routing)


def test_an_empty_routing_list_means_the_defaults() -> None:
    assert load([]).routing[-1].name == "default"


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        (
            {"name": "x", "kinds": ["sos"], "category": "unicorns", "level": "high"},
            "alert rule 'x': unknown category 'unicorns'",
        ),
        ({"name": "x", "kinds": [], "category": "intrusion", "level": "high"}, "kinds"),
        ({"name": "x", "kinds": ["teleport"], "category": "intrusion", "level": "high"}, "kinds"),
        (
            {"name": "x", "kinds": ["sos", "sos"], "category": "intrusion", "level": "high"},
            "alert rule 'x': a kind is listed twice",
        ),
        (
            {
                "name": "x",
                "kinds": ["sos"],
                "category": "intrusion",
                "level": "high",
                "group_window_s": 0,
            },
            "group_window_s",
        ),
        (
            {
                "name": "x",
                "kinds": ["sos"],
                "category": "intrusion",
                "level": "high",
                "place": "planet",
            },
            "place",
        ),
        (
            {
                "name": "x",
                "kinds": ["sos"],
                "category": "intrusion",
                "level": "high",
                "min_severity": "apocalyptic",
            },
            "min_severity",
        ),
    ],
)
def test_alert_rule_refusals(rule: dict[str, Any], match: str) -> None:
    refused(match, alert_rules=[rule])


def test_alert_rule_names_are_unique() -> None:
    rule = {"name": "x", "kinds": ["sos"], "category": "intrusion", "level": "high"}
    refused("alert rule 'x': the name is used twice", alert_rules=[rule, rule])


def test_a_valid_area_loads() -> None:
    cfg = load([{"name": "a", "when": {"area": square(114.0, 22.5)}, "department": "a"}, DEFAULT])
    assert cfg.routing[0].when.area is not None
