"""Lines of work and incident categories: the district's vocabulary, typed and validated.

A category belongs to one line of work; a grid cell names, per line, the department
responsible for it (``cell_departments``), which is how routing can say "the cell's
sanitation department". Names are given in every catalogue language.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.validators import SegmentId

Name = Annotated[str, Field(min_length=1, max_length=100)]


class Names(StrictModel):
    en: Name
    zh_CN: Name = Field(alias="zh-CN")  # noqa: N815 - the catalogue's language tag


class Line(StrictModel):
    id: SegmentId
    names: Names


class Category(StrictModel):
    id: SegmentId
    names: Names
    line: SegmentId
    field_reportable: bool = Field(
        default=True, description="grid workers and Open311 clients may report it"
    )
    open311_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = Field(
        default=None, description="the Open311 service_code (None: the category id)"
    )


DEFAULT_LINES = [
    Line(id="public_security", names=Names(en="Public security", **{"zh-CN": "公共安全"})),
    Line(id="city_management", names=Names(en="City management", **{"zh-CN": "城市管理"})),
    Line(id="sanitation", names=Names(en="Sanitation", **{"zh-CN": "环境卫生"})),
    Line(id="petitions", names=Names(en="Petitions and disputes", **{"zh-CN": "信访调解"})),
]


def _c(cid: str, line: str, en: str, zh: str, *, reportable: bool = True) -> Category:
    return Category(
        id=cid, line=line, names=Names(en=en, **{"zh-CN": zh}), field_reportable=reportable
    )


DEFAULT_CATEGORIES = [
    # Raised from device alerts (not something a grid worker reports by hand).
    _c("intrusion", "public_security", "Intrusion", "非法闯入", reportable=False),
    _c("person_in_distress", "public_security", "Person in distress", "人员求助", reportable=False),
    _c("watchlist_match", "public_security", "Watchlist match", "布控比中", reportable=False),
    _c("device_fault", "city_management", "Sensor or device fault", "设备故障", reportable=False),
    # Reported by grid workers (and Open311 clients); the text classifier suggests one.
    _c("public_order", "public_security", "Public disorder", "治安纠纷"),
    _c("fire_hazard", "public_security", "Fire hazard", "消防隐患"),
    _c("illegal_parking", "city_management", "Illegal parking", "违章停车"),
    _c("street_vending", "city_management", "Unlicensed street vending", "占道经营"),
    _c("road_damage", "city_management", "Damaged road or pavement", "道路破损"),
    _c("streetlight", "city_management", "Streetlight out", "路灯故障"),
    _c("noise", "city_management", "Noise nuisance", "噪音扰民"),
    _c("garbage", "sanitation", "Garbage or illegal dumping", "垃圾堆放"),
    _c("sewage", "sanitation", "Sewage or water leak", "污水外溢"),
    _c("neighbour_dispute", "petitions", "Neighbour dispute", "邻里纠纷"),
    _c("other", "petitions", "Other", "其他"),
]


class Vocabulary(StrictModel):
    """Lines and categories; referenced by routing, deadlines, warnings and field reports."""

    lines: Annotated[list[Line], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_LINES)
    )
    categories: Annotated[list[Category], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_CATEGORIES)
    )

    @model_validator(mode="after")
    def _consistent(self) -> Vocabulary:
        lines = [line.id for line in self.lines]
        if len(set(lines)) != len(lines):
            raise ValueError("line ids must be unique")
        ids = [c.id for c in self.categories]
        if len(set(ids)) != len(ids):
            raise ValueError("category ids must be unique")
        codes = [c.open311_code or c.id for c in self.categories]
        if len(set(codes)) != len(codes):
            raise ValueError("Open311 service codes must be unique")
        for c in self.categories:
            if c.line not in lines:
                raise ValueError(f"category {c.id!r} names unknown line {c.line!r}")
        return self

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def line_ids(self) -> list[str]:
        return [line.id for line in self.lines]

    def reportable(self) -> list[Category]:
        return [c for c in self.categories if c.field_reportable]
