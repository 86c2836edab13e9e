"""The GeoJSON cell parser on its own: every bad feature named with what to fix, the whole
file refused, garbage never anything but a clear refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import TooLarge, Unsupported
from hub.geo.cell_import import KEEP, MAX_FEATURES, CellImportError, parse
from tests.hub.org.helpers import ring

BOWTIE = [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]
GEO = "application/geo+json"


def cell(cid: Any, coords: Any = None, **props: Any) -> dict[str, Any]:
    geometry = {"type": "Polygon", "coordinates": [coords or ring(114.0, 22.5)]}
    return {"type": "Feature", "id": cid, "geometry": geometry, "properties": props}


def fc(*features: Any) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def problems_of(raw: bytes, media_type: str = GEO) -> list[str]:
    with pytest.raises(CellImportError) as caught:
        parse("demo", raw, media_type)
    return caught.value.problems


def test_good_file_parses_polygons_and_multipolygons() -> None:
    multi = {
        "type": "Feature",
        "id": "m1",
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [[ring(114.0, 22.5)], [ring(114.01, 22.5)]],
        },
        "properties": {"name": "Market", "team": "north", "colour": "blue"},
    }
    drafts = parse(
        "demo",
        fc(cell("a1", name=" A1 ", departments={"sanitation": "d1"}), multi),
        "application/json",
    )
    assert [d.id for d in drafts] == ["a1", "m1"]
    assert drafts[0].name == "A1"
    assert drafts[0].team is KEEP  # left out: the cell keeps its team
    assert drafts[0].departments == {"sanitation": "d1"}
    assert drafts[1].team == "north"
    assert drafts[1].departments is KEEP
    assert drafts[1].properties == {"colour": "blue"}
    assert drafts[1].geometry["type"] == "MultiPolygon"


def test_every_bad_feature_is_listed_with_its_index_and_id() -> None:
    unclosed = [*ring(114.0, 22.5)[:-1], [114.0005, 22.5]]
    problems = problems_of(
        fc(
            cell("ok", name="fine"),
            cell("open", unclosed, name="x"),
            cell("bow", BOWTIE, name="x"),
            cell("far", [[200, 0], [201, 0], [201, 1], [200, 0]], name="x"),
            cell("c-12"),
            cell("ok", name="again"),
            {
                "type": "Feature",
                "id": "pt",
                "geometry": {"type": "Point", "coordinates": [0, 0]},
                "properties": {"name": "p"},
            },
            {"type": "Feat", "id": 7, "geometry": None, "properties": None},
            "not an object",
            cell("t1", name="x", team=["north"], departments="sanitation"),
            cell("s1", name="x", site="other"),
        )
    )
    joined = "\n".join(problems)
    assert "feature 1 (id 'open'): geometry: coordinates[0]: the ring is not closed" in joined
    assert "feature 2 (id 'bow'): geometry: polygon is not valid: Self-intersection" in joined
    assert "feature 3 (id 'far'): geometry: coordinates[0][0]: [200, 0] is outside WGS84" in joined
    assert "feature 4 (id 'c-12'): properties.name: missing" in joined
    assert "feature 5 (id 'ok'): id: also used by feature 0" in joined
    assert "feature 6 (id 'pt'): geometry: geometry type 'Point' is not allowed" in joined
    assert "feature 7: type: must be 'Feature', not 'Feat'" in joined
    assert "feature 7: id: 7 must be a string" in joined
    assert "feature 7: geometry: missing" in joined
    assert "feature 7: properties: missing" in joined
    assert "feature 8: not a GeoJSON Feature object" in joined
    assert "feature 9 (id 't1'): properties.team: ['north'] is not a team id" in joined
    assert "feature 9 (id 't1'): properties.departments: must map a line" in joined
    assert "feature 10 (id 's1'): properties.site: 'other' differs" in joined
    assert not any("feature 0 " in p for p in problems)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"type": "FeatureCollection", "features": [NaN]}', "not valid JSON"),
        (b"\xff\xfe", "UTF-8"),
        (json.dumps(cell("a", name="x")).encode(), "wrap it as"),
        (b"[]", "got 'list'"),
        (b'{"type": "FeatureCollection", "features": {}}', "features: must be a list"),
        (b'{"type": "FeatureCollection", "features": [], "x": "\\u0000"}', "NUL"),
        (b'{"type": "FeatureCollection", "features": [{"properties": {"n\\u0000": 1}}]}', "NUL"),
        (b'{"type": "FeatureCollection", "features": [], "x": 1e999}', "finite"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_files_that_are_not_a_feature_collection(raw: bytes, needle: str) -> None:
    assert needle in " ".join(problems_of(raw))


def test_media_type_and_feature_limit() -> None:
    with pytest.raises(Unsupported):
        parse("demo", fc(), "text/csv")
    with pytest.raises(TooLarge, match=f"limit is {MAX_FEATURES}"):
        parse("demo", fc(*([{}] * (MAX_FEATURES + 1))), GEO)
    assert parse("demo", fc(), GEO) == []


def test_problem_list_is_capped_and_long_values_cut() -> None:
    with pytest.raises(CellImportError) as caught:
        parse("demo", fc(cell("x" * 10_000), *[cell(f"c{i}") for i in range(80)]), GEO)
    err = caught.value
    assert len(err.problems) == 50
    # the 10,000-character id is not a segment id (one problem) and has no name (another)
    assert str(err).startswith("82 problems, nothing imported: feature 0 (id 'xxx")
    assert str(err).endswith("and 32 more")
    assert len(str(err)) < 10_000


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids),
        max_leaves=30,
    )
)
def test_garbage_is_always_a_clear_refusal(value: Any) -> None:
    features = value if isinstance(value, list) else [value]
    raw = fc(*features)
    try:
        parse("demo", raw, GEO)
    except CellImportError as err:
        assert err.problems
        assert all(isinstance(p, str) and p for p in err.problems)
