"""Each warning rule condition with time travel, highest colour wins, history only on change,
two hubs on one database, and rules refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from hub.schema import audit_log, cell_warning_history
from hub.warnings.config import WarningsConfig
from hub.warnings.service import check_rule_categories
from tests.hub.warnings.conftest import Warnings, make_warnings


def history(w: Warnings, cell_id: str) -> list[tuple[str | None, str, str | None]]:
    with w.ctx.engine.connect() as conn:
        rows = conn.execute(
            select(cell_warning_history)
            .where(cell_warning_history.c.cell_id == cell_id)
            .order_by(cell_warning_history.c.id)
        ).all()
    return [(r.level, r.source, r.rule) for r in rows]


def test_open_critical_is_red_and_closing_it_clears_the_cell(wh: Warnings) -> None:
    wh.cell("a1", 0)
    wh.cell("a2", 1)
    assert wh.tick() == []  # first tick: a full pass; nothing to colour
    inc = wh.incident("a1", "critical")
    changes = wh.tick()  # incremental: found through incidents.updated_at
    assert [(c.cell_id, c.level, c.rule) for c in changes] == [("a1", "red", "critical-open")]
    assert wh.level("a1") == "red" and wh.level("a2") is None
    wh.advance(seconds=30)
    wh.close(inc.id)
    assert [(c.cell_id, c.level) for c in wh.tick()] == [("a1", None)]
    assert history(wh, "a1") == [("red", "rules", "critical-open"), (None, "none", None)]


def test_two_overdue_high_turn_orange_into_red_when_the_deadline_passes(wh: Warnings) -> None:
    wh.cell("a1", 0)
    wh.incident("a1", "high", deadline_in_min=60)
    wh.incident("a1", "high", deadline_in_min=90)
    wh.tick()
    assert wh.level("a1") == "orange"
    wh.advance(minutes=61)  # one overdue: not yet two
    wh.tick()
    assert wh.level("a1") == "orange"
    wh.advance(minutes=30)  # both overdue; no incident changed, time alone did it
    changes = wh.tick()
    assert [(c.level, c.rule) for c in changes] == [("red", "overdue-high")]


def test_an_incident_reaching_the_rule_age_turns_the_cell_yellow_on_the_next_tick(
    site: str, tmp_path: Path
) -> None:
    w = make_warnings(site, tmp_path, warnings={"tick_s": 3600, "full_every_ticks": 3})
    try:
        w.cell("a1", 0)
        w.incident("a1", "low")
        w.tick()  # tick 0: full
        assert w.level("a1") is None
        w.advance(hours=23, minutes=59)
        w.tick()
        assert w.level("a1") is None
        w.advance(minutes=2)  # 24 h 1 min old: nothing changed but the clock
        changes = w.tick()  # tick 2: incremental, found as crossing the rule's 24 h age
        assert [(c.level, c.rule) for c in changes] == [("yellow", "stale-open")]
    finally:
        w.service.store.close()


def test_the_full_pass_catches_an_incident_moved_out_of_a_cell(
    site: str, tmp_path: Path
) -> None:
    w = make_warnings(site, tmp_path, warnings={"tick_s": 3600, "full_every_ticks": 3})
    try:
        w.cell("a1", 0)
        w.cell("a2", 1)
        inc = w.incident("a1", "critical")
        w.tick()  # full
        w.advance(seconds=10)
        w.patch(inc.id, cell_id="a2")  # relocated: only its new cell is in updated_at
        assert [(c.cell_id, c.level) for c in w.tick()] == [("a2", "red")]
        assert w.level("a1") == "red"  # the old cell waits for the full pass
        w.tick()
        assert [(c.cell_id, c.level) for c in w.tick()] == [("a1", None)]  # tick 3: full
    finally:
        w.service.store.close()


def test_three_open_incidents_are_yellow(wh: Warnings) -> None:
    wh.cell("a1", 0)
    wh.incident("a1", "low")
    wh.incident("a1", "medium")
    wh.recompute()
    assert wh.level("a1") is None
    wh.incident("a1", "low")
    wh.recompute()
    assert wh.level("a1") == "yellow"


def test_an_alert_burst_is_orange_and_decays_with_its_window(wh: Warnings) -> None:
    wh.cell("a1", 0)
    wh.cell("a2", 1)
    wh.tick()
    for ago in (25, 20, 10, 5):
        wh.alert(0, ago_min=ago)
    wh.alert(1)  # in the other cell: does not count for a1
    assert wh.tick() == []
    wh.alert(0)  # the fifth in 30 minutes
    changes = wh.tick()
    assert [(c.cell_id, c.level, c.rule) for c in changes] == [("a1", "orange", "alert-burst")]
    explained = wh.ctx.warnings.explain("a1").verdict
    assert explained["alerts"] == {"count": 5, "window_min": 30}
    wh.advance(minutes=6)  # the alert from 25 min ago leaves the window: four left
    assert [(c.cell_id, c.level) for c in wh.tick()] == [("a1", None)]


def test_the_highest_colour_wins_whatever_the_rule_order(site: str, tmp_path: Path) -> None:
    rules = [
        {"name": "any-open", "colour": "yellow", "incidents": {}},
        {"name": "high", "colour": "orange", "incidents": {"min_level": "high"}},
        {"name": "fire", "colour": "red", "incidents": {"categories": ["fire_hazard"]}},
        {"name": "fire-again", "colour": "red", "incidents": {"categories": ["fire_hazard"]}},
    ]
    w = make_warnings(site, tmp_path, warnings={"tick_s": 3600, "rules": rules})
    try:
        w.cell("a1", 0)
        w.incident("a1", "high", "garbage")
        w.recompute()
        assert (w.level("a1"), w.ctx.geo.cell("a1").warning_rule) == ("orange", "high")
        fire = w.incident("a1", "low", "fire_hazard")
        w.recompute()
        cell = w.ctx.geo.cell("a1")
        assert (cell.warning_level, cell.warning_rule) == ("red", "fire")  # the first red rule
        explained = w.ctx.warnings.explain("a1").verdict
        assert explained["matched_rules"] == ["any-open", "high", "fire", "fire-again"]
        assert [i["id"] for i in explained["incidents"]] == [fire.id]  # only fire's incidents
    finally:
        w.service.store.close()


def test_alert_kinds_and_rules_with_both_conditions(site: str, tmp_path: Path) -> None:
    rules = [
        {
            "name": "sos-with-incident",
            "colour": "red",
            "incidents": {"min_level": "medium"},
            "alerts": {"window_min": 10, "min_alerts": 2, "kinds": ["sos"]},
        }
    ]
    w = make_warnings(site, tmp_path, warnings={"tick_s": 3600, "rules": rules})
    try:
        w.cell("a1", 0)
        w.alert(0, kind="sos")
        w.alert(0, kind="sos")
        w.alert(0, kind="intrusion")
        w.recompute()
        assert w.level("a1") is None  # alerts alone are not enough for this rule
        w.incident("a1", "medium")
        w.recompute()
        assert w.level("a1") == "red"
        w.advance(minutes=11)
        w.recompute()
        assert w.level("a1") is None
    finally:
        w.service.store.close()


def test_history_only_when_the_colour_or_what_is_behind_it_changes(wh: Warnings) -> None:
    wh.cell("a1", 0)
    wh.incident("a1", "high")
    wh.recompute()
    wh.recompute()
    wh.advance(hours=1)  # ages move; that alone is no change
    wh.recompute()
    assert history(wh, "a1") == [("orange", "rules", "high-open")]
    wh.incident("a1", "medium")  # not behind high-open: nothing to record
    wh.recompute()
    assert len(history(wh, "a1")) == 1
    wh.incident("a1", "high")  # a second incident behind the same rule: recorded
    wh.recompute()
    assert history(wh, "a1") == [("orange", "rules", "high-open")] * 2
    with wh.ctx.engine.connect() as conn:
        audited = conn.execute(
            select(func.count()).where(
                audit_log.c.action == "cell.warning", audit_log.c.target == "a1"
            )
        ).scalar()
    assert audited == 2


def test_incidents_outside_every_cell_or_in_other_states_do_not_count(wh: Warnings) -> None:
    wh.cell("a1", 0)
    wh.incident(None, "critical")
    done = wh.incident("a1", "critical")
    wh.patch(done.id, state="resolved")
    wh.recompute()
    assert wh.level("a1") is None


def test_two_hubs_on_one_database_write_one_history_row(site: str, tmp_path: Path) -> None:
    a = make_warnings(site, tmp_path)
    b = make_warnings(site, tmp_path)
    try:
        a.cell("a1", 0)
        a.incident("a1", "critical")
        # Both hubs read the cell before either writes: the loser's compare-and-set fails.
        row_a, verdict_a, now_a = a.ctx.warnings.verdict("a1")
        assert [c.level for c in b.ctx.warnings.recompute()] == ["red"]
        assert a.ctx.warnings._write(row_a, verdict_a, now_a) is None  # lost: writes nothing
        assert a.ctx.warnings.recompute() == []  # and afterwards it agrees: nothing to do
        assert history(a, "a1") == [("red", "rules", "critical-open")]
        with a.ctx.engine.connect() as conn:
            audited = conn.execute(
                select(func.count()).where(audit_log.c.action == "cell.warning")
            ).scalar()
        assert audited == 1  # the loser's audit record went with its rolled-back write
    finally:
        a.service.store.close()
        b.service.store.close()


def test_rules_that_could_never_match_are_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="has no condition"):
        WarningsConfig.model_validate({"rules": [{"name": "x", "colour": "red"}]})
    with pytest.raises(ValidationError, match="unique"):
        WarningsConfig.model_validate(
            {"rules": [{"name": "x", "colour": "red", "incidents": {}}] * 2}
        )
    with pytest.raises(ValidationError, match="red"):
        WarningsConfig.model_validate(
            {"rules": [{"name": "x", "colour": "purple", "incidents": {}}]}
        )
    with pytest.raises(ValidationError):
        WarningsConfig.model_validate(
            {"rules": [{"name": "x", "colour": "red", "incidents": {"min_count": 0}}]}
        )
    with pytest.raises(ValidationError):
        WarningsConfig.model_validate({"rules": [], "unknown": 1})
    bad = WarningsConfig.model_validate(
        {"rules": [{"name": "x", "colour": "red", "incidents": {"categories": ["ufo"]}}]}
    )
    from hub.incidents.config import IncidentsConfig

    with pytest.raises(ValueError, match="unknown incident categories"):
        check_rule_categories(bad, IncidentsConfig())


def test_the_default_rules_load() -> None:
    config = WarningsConfig()
    assert [r.name for r in config.rules] == [
        "critical-open",
        "overdue-high",
        "high-open",
        "alert-burst",
        "stale-open",
        "several-open",
    ]
