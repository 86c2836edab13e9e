"""Zone, grid-cell and point-of-interest rules: geometry is validated before anything is
stored, zones are versioned, every change is audited, imports replace atomically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import IntegrityError

from edge.validators import utcnow
from hub.audit import AuditTrail
from hub.errors import Conflict, Invalid, NotFound
from hub.geo import cell_import, poi_import, repository
from hub.geo.cell_import import KEEP, CellDraft, CellImportError
from hub.geo.geojson import GeoJSONError, validate_polygon
from hub.incidents.categories import Vocabulary
from hub.incidents.model import OPEN_STATES
from hub.org import repository as org_repository
from hub.org.service import check_responsibility
from hub.schema import grid_cells, zones

ZONE_FIELDS = {"site", "name", "kind", "version"}
CELL_FIELDS = {
    "site",
    "name",
    "team",
    # answered from the organisation tables: a GET -> PUT round trip must not store copies
    "team_id",
    "responsible_team",
    "departments",
    "warning_level",
    "warning_reason",
    "warning_set_by",
    "warning_set_at",
    "warning_source",
    "warning_rule",
}


class ZoneNotFound(NotFound):
    pass


class CellNotFound(NotFound):
    pass


class CellConflict(Conflict):
    pass


class UnknownSite(Invalid):
    pass


@dataclass(frozen=True, slots=True)
class ImportSummary:
    imported: int
    replaced: bool


@dataclass(frozen=True, slots=True)
class CellImportSummary:
    imported: int
    created: int
    updated: int
    deleted: int
    replaced: bool


def _geometry(geometry: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_polygon(geometry)
    except GeoJSONError as err:
        raise GeoJSONError(f"geometry: {err}") from err


def _check_id(feature_id: str, url_id: str) -> None:
    if feature_id != url_id:
        raise Invalid(f"feature id {feature_id!r} differs from the URL's {url_id!r}")


class GeoService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        hub_site: str | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.hub_site = hub_site
        self.vocabulary = vocabulary or Vocabulary()

    def _check_site(self, conn: Connection, site: str) -> None:
        """A grid cell belongs to a site this hub serves: its own (when configured for one)
        or, for a hub of every site, one that is registered or has a device."""
        if self.hub_site is not None:
            known = site == self.hub_site
        else:
            known = repository.site_known(conn, site)
        if not known:
            raise UnknownSite(
                f"site {site!r} is unknown to this hub: provision a device there first"
                + (f" (this hub serves site {self.hub_site!r})" if self.hub_site else "")
            )

    def _page(self, table: Table, *, limit: int, after: str | None, site: str | None) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.page(conn, table, limit=limit, after=after, site=site)

    def zones(self, *, limit: int, after: str | None, site: str | None) -> list[Any]:
        return self._page(zones, limit=limit, after=after, site=site)

    def cells(self, *, limit: int, after: str | None, site: str | None) -> list[Any]:
        return self._page(grid_cells, limit=limit, after=after, site=site)

    # -- zones ----------------------------------------------------------------------------

    def zone(self, zone_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.get(conn, zones, zone_id)
        if row is None:
            raise ZoneNotFound(f"no zone {zone_id!r}")
        return row

    def put_zone(
        self,
        actor: str,
        zone_id: str,
        feature_id: str,
        geometry: dict[str, Any],
        properties: dict[str, Any],
    ) -> Any:
        """Create or replace a zone; its version increases on every change."""
        _check_id(feature_id, zone_id)
        values = {
            "site": properties["site"],
            "name": properties["name"],
            "kind": properties["kind"],
            "geometry": _geometry(geometry),
            "properties": {k: v for k, v in properties.items() if k not in ZONE_FIELDS},
            "updated_at": utcnow(),
            "updated_by": actor,
        }
        with self.audit.change(actor, "zone.put", zone_id, {"kind": values["kind"]}) as conn:
            current = repository.zone_version(conn, zone_id)
            if current is None:
                repository.insert_zone(conn, zone_id, 1, values)
            else:
                repository.update_zone(conn, zone_id, current + 1, values)
            return repository.get(conn, zones, zone_id)

    def delete_zone(self, actor: str, zone_id: str) -> None:
        with self.audit.change(actor, "zone.delete", zone_id) as conn:
            if not repository.delete_one(conn, zones, zone_id):
                raise ZoneNotFound(f"no zone {zone_id!r}")

    # -- grid cells -----------------------------------------------------------------------

    def cell(self, cell_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.get(conn, grid_cells, cell_id)
        if row is None:
            raise CellNotFound(f"no grid cell {cell_id!r}")
        return row

    def put_cell(
        self,
        actor: str,
        cell_id: str,
        feature_id: str,
        geometry: dict[str, Any],
        properties: dict[str, Any],
    ) -> Any:
        _check_id(feature_id, cell_id)
        values = {
            "site": properties["site"],
            "name": properties["name"],
            "team": properties.get("team", ""),
            "geometry": _geometry(geometry),
            "properties": {k: v for k, v in properties.items() if k not in CELL_FIELDS},
            "updated_at": utcnow(),
        }
        with self.audit.change(actor, "cell.put", cell_id) as conn:
            self._check_site(conn, values["site"])
            try:
                if repository.cell_exists(conn, cell_id):
                    repository.update_cell(conn, cell_id, values)
                else:
                    repository.insert_cell(conn, cell_id, values)
            except IntegrityError as err:
                raise CellConflict(str(err.orig)) from err
            return repository.get(conn, grid_cells, cell_id)

    def delete_cell(self, actor: str, cell_id: str) -> None:
        with self.audit.change(actor, "cell.delete", cell_id) as conn:
            if not repository.delete_one(conn, grid_cells, cell_id):
                raise CellNotFound(f"no grid cell {cell_id!r}")

    def import_cells(
        self, actor: str, site: str, raw: bytes, media_type: str, *, replace: bool
    ) -> CellImportSummary:
        """Create or update the file's cells, all or nothing; ``replace`` also deletes the
        site's cells the file does not name (refused while one holds an open incident)."""
        drafts = cell_import.parse(site, raw, media_type)
        details: dict[str, Any] = {"site": site, "replace": replace, "count": len(drafts)}
        with self.audit.change(actor, "cell.import", site, details) as conn:
            self._check_site(conn, site)
            existing = repository.cell_sites(conn, [d.id for d in drafts])
            self._check_drafts(conn, site, drafts, existing)
            gone: list[str] = []
            if replace:
                named = {d.id for d in drafts}
                gone = [c for c in repository.cell_ids_of_site(conn, site) if c not in named]
                self._refuse_open_incidents(conn, gone)
                repository.delete_cells(conn, gone)
            try:
                self._write_cells(conn, site, drafts, existing)
            except IntegrityError as err:
                # Another import (or a delete of a named team or department) committed
                # between our checks and our writes, on a store that does not serialise them.
                raise CellConflict(
                    "the cells, teams or departments changed during the import: try again"
                ) from err
            summary = CellImportSummary(
                imported=len(drafts),
                created=sum(1 for d in drafts if d.id not in existing),
                updated=sum(1 for d in drafts if d.id in existing),
                deleted=len(gone),
                replaced=replace,
            )
            details.update(created=summary.created, updated=summary.updated, deleted=len(gone))
        return summary

    def _check_drafts(
        self, conn: Connection, site: str, drafts: list[CellDraft], existing: dict[str, str]
    ) -> None:
        teams = org_repository.teams_by_id(
            conn, [d.team for d in drafts if isinstance(d.team, str)]
        )
        deps = org_repository.departments_by_id(
            conn,
            [v for d in drafts if isinstance(d.departments, dict) for v in d.departments.values()],
        )
        problems: list[str] = []
        for d in drafts:
            other = existing.get(d.id)
            if other is not None and other != site:
                problems.append(f"{d.where}: id: taken by a grid cell of site {other!r}")
            found = check_responsibility(
                conn,
                self.vocabulary,
                site=site,
                team_id=d.team if isinstance(d.team, str) else None,
                by_line=d.departments if isinstance(d.departments, dict) else {},
                where=f"{d.where}: properties.",
                teams=teams,
                departments=deps,
            )
            problems += found
        if problems:
            raise CellImportError(problems)

    def _refuse_open_incidents(self, conn: Connection, cell_ids: list[str]) -> None:
        held = repository.open_incidents_in_cells(conn, cell_ids, [s.value for s in OPEN_STATES])
        if held:
            listed = ", ".join(f"{cell} ({number})" for cell, number in held)
            raise CellConflict(
                "replace would delete grid cells that hold open incidents: "
                f"{listed}; keep them in the file or close the incidents first"
            )

    def _write_cells(
        self, conn: Connection, site: str, drafts: list[CellDraft], existing: dict[str, str]
    ) -> None:
        # Wall-clock stamps like every other cell write: the cell locator's cache is keyed
        # on (count, latest updated_at) and must see a replaced geometry as a change.
        now = utcnow()
        team_names = {
            t.id: t.name
            for t in org_repository.teams_by_id(
                conn, [d.team for d in drafts if isinstance(d.team, str)]
            ).values()
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for d in drafts:
            values: dict[str, Any] = {
                "name": d.name,
                "geometry": d.geometry,
                "properties": d.properties,
                "updated_at": now,
            }
            if d.team is not KEEP:
                values["team_id"] = d.team
                if isinstance(d.team, str):
                    values["team"] = team_names[d.team]
            if d.id in existing:
                updates.append({"cell_id": d.id, **values})
            else:
                inserts.append({"team": "", "team_id": None, **values, "id": d.id, "site": site})
        repository.insert_cells(conn, inserts)
        repository.update_cells(conn, updates)
        org_repository.replace_many_cell_departments(
            conn, {d.id: d.departments for d in drafts if isinstance(d.departments, dict)}
        )

    # -- points of interest ---------------------------------------------------------------

    def import_pois(
        self, actor: str, site: str, raw: bytes, media_type: str, *, replace: bool
    ) -> ImportSummary:
        """Import a GeoJSON or CSV file; ``replace`` deletes the site's other points first."""
        rows = poi_import.parse(site, raw, media_type)
        with self.audit.change(
            actor, "poi.import", site, {"count": len(rows), "replace": replace}
        ) as conn:
            repository.replace_pois(conn, site, rows, whole_site=replace)
        return ImportSummary(len(rows), replace)

    def pois(
        self, *, limit: int, after: str | None, site: str | None, category: str | None
    ) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.poi_page(conn, limit=limit, after=after, site=site, category=category)
