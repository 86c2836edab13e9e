"""Grid cells from a GeoJSON FeatureCollection: every feature is checked and every problem is
listed ("feature 3 (id 'c-12'): properties.name: missing"), so one upload tells an operator
everything to fix; nothing is stored unless the whole file is good."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edge.validators import SEGMENT_PATTERN, SEGMENT_RE
from hub.errors import Invalid, TooLarge, Unsupported
from hub.geo.geojson import GeoJSONError, validate_polygon
from hub.storable import UnstorableError, check_json

GEOJSON_TYPES = ("application/json", "application/geo+json")
MAX_FEATURES = 5_000
MAX_PROBLEMS = 50
# Keys the import reads itself; the others stay with the cell as its properties.
OWN_KEYS = frozenset({"site", "name", "team", "departments", "team_id"})


class Keep:
    """A property the file leaves out: the cell keeps what it has (a re-import of geometry
    from a GIS must not wipe the teams and departments set in the dashboard)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep()


class CellImportError(Invalid):
    """A file that cannot be imported, with every problem found (the first 50 shown)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems[:MAX_PROBLEMS]
        more = len(problems) - len(self.problems)
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}, nothing imported: "
        tail = f"; and {more} more" if more > 0 else ""
        super().__init__(head + "; ".join(self.problems) + tail)


@dataclass(frozen=True, slots=True)
class CellDraft:
    index: int
    id: str
    name: str
    geometry: dict[str, Any]
    properties: dict[str, Any]
    team: str | Keep | None
    departments: dict[str, str] | Keep

    @property
    def where(self) -> str:
        return f"feature {self.index} (id {self.id!r})"


def _short(value: Any) -> str:
    """A value quoted for an error message, cut short: a problem list must stay readable
    (and small) whatever a file puts in its ids."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load(raw: bytes, media_type: str) -> Any:
    """The parsed JSON of an upload, or a clear refusal."""
    if media_type not in GEOJSON_TYPES:
        raise Unsupported("send the cells as application/geo+json (or application/json)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CellImportError(["the file must be UTF-8 text"]) from err
    if "\x00" in text:
        raise CellImportError(["the file must not contain NUL (\\u0000) characters"])
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise CellImportError([f"not valid JSON: {err.msg} at line {err.lineno}"]) from err
    except RecursionError as err:
        raise CellImportError(["the JSON is nested too deeply to be GeoJSON"]) from err
    except ValueError as err:  # NaN/Infinity, or an integer past Python's digit limit
        raise CellImportError([f"not valid JSON: {err}"]) from err
    return data


def _unstorable(value: Any, where: str) -> str | None:
    try:
        check_json(value, where)
    except UnstorableError as err:
        return str(err)
    return None


def parse(site: str, raw: bytes, media_type: str) -> list[CellDraft]:
    """Every cell of the file, or :class:`CellImportError` listing every problem."""
    data = load(raw, media_type)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        got = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise CellImportError(
            [
                f"expected a GeoJSON FeatureCollection, got {_short(got)}"
                + (
                    ': wrap it as {"type": "FeatureCollection", "features": [...]}'
                    if got == "Feature"
                    else ""
                )
            ]
        )
    # Geometries are checked position by position (numbers in range) and stored normalised,
    # so the storable check walks the rest only: the coordinates are most of a file.
    if problem := _unstorable({k: v for k, v in data.items() if k != "features"}, "file"):
        raise CellImportError([problem])
    features = data.get("features")
    if not isinstance(features, list):
        raise CellImportError(["features: must be a list of GeoJSON Features"])
    if len(features) > MAX_FEATURES:
        raise TooLarge(
            f"the file has {len(features)} features; the limit is {MAX_FEATURES} per import "
            "(split it by area and import each part without replace)"
        )
    problems: list[str] = []
    drafts: list[CellDraft] = []
    first_of: dict[str, int] = {}
    for i, feat in enumerate(features):
        draft = _feature(site, i, feat, problems)
        if draft is None:
            continue
        if draft.id in first_of:
            problems.append(
                f"{draft.where}: id: also used by feature {first_of[draft.id]}; ids must be unique"
            )
            continue
        first_of[draft.id] = i
        drafts.append(draft)
    if problems:
        raise CellImportError(problems)
    return drafts


def _feature(site: str, i: int, feat: Any, problems: list[str]) -> CellDraft | None:
    if not isinstance(feat, dict):
        problems.append(f"feature {i}: not a GeoJSON Feature object")
        return None
    fid = feat.get("id")
    where = f"feature {i} (id {_short(fid)})" if isinstance(fid, str) else f"feature {i}"
    mine = _shape_problems(feat)
    if problem := _unstorable({k: v for k, v in feat.items() if k != "geometry"}, "feature"):
        problems.append(f"{where}: {problem}")
        return None
    geometry: dict[str, Any] = {}
    if feat.get("geometry") is None:
        mine.append("geometry: missing")
    else:
        try:
            geometry = validate_polygon(feat["geometry"])
        except GeoJSONError as err:
            mine.append(f"geometry: {err}")
    props = feat.get("properties")
    if not isinstance(props, dict):
        mine.append("properties: missing (an object with at least a name)")
        props = {}
    name = _name(props, mine)
    if "site" in props and props["site"] != site:
        mine.append(f"properties.site: {_short(props['site'])} differs from the import's {site!r}")
    team = _team(props, mine)
    departments = _departments(props, mine)
    problems.extend(f"{where}: {p}" for p in mine)
    if mine or not isinstance(fid, str):
        return None
    extra = {k: v for k, v in props.items() if k not in OWN_KEYS}
    return CellDraft(i, fid, name, geometry, extra, team, departments)


def _shape_problems(feat: dict[str, Any]) -> list[str]:
    mine = []
    if feat.get("type") != "Feature":
        mine.append(f"type: must be 'Feature', not {_short(feat.get('type'))}")
    fid = feat.get("id")
    if fid is None:
        mine.append("id: missing (each cell needs a string id)")
    elif not isinstance(fid, str) or not SEGMENT_RE.fullmatch(fid):
        mine.append(f"id: {_short(fid)} must be a string matching {SEGMENT_PATTERN}")
    return mine


def _name(props: dict[str, Any], mine: list[str]) -> str:
    raw = props.get("name")
    if raw is None:
        mine.append("properties.name: missing")
    elif not isinstance(raw, str) or not 1 <= len(raw.strip()) <= 200:
        mine.append("properties.name: must be text of 1-200 characters")
    else:
        return raw.strip()
    return ""


def _team(props: dict[str, Any], mine: list[str]) -> str | Keep | None:
    if "team" not in props:
        return KEEP
    value = props["team"]
    if value is None or (isinstance(value, str) and SEGMENT_RE.fullmatch(value)):
        return value
    mine.append(f"properties.team: {_short(value)} is not a team id (or null for none)")
    return KEEP


def _departments(props: dict[str, Any], mine: list[str]) -> dict[str, str] | Keep:
    if "departments" not in props:
        return KEEP
    value = props["departments"]
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    mine.append(
        "properties.departments: must map a line of work to a department id, "
        'e.g. {"sanitation": "dept-sanitation"}'
    )
    return KEEP
