"""Departments, teams and who is responsible for each grid cell: every rule is checked before
anything is stored, every problem is named with the field it concerns, every change audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from edge.validators import new_id
from hub.audit import AuditTrail
from hub.auth import ROLE_PERMISSIONS, Permission, Role
from hub.clock import Clock, SystemClock
from hub.errors import Conflict, Invalid, NotFound
from hub.geo import repository as geo_repository
from hub.incidents.categories import Vocabulary
from hub.org import repository

# Who may be in a team of grid workers, and who an overdue incident may escalate to.
MEMBER_ROLES = frozenset({Role.WORKER, Role.OFFICER, Role.OPERATOR})
ESCALATION_ROLES = frozenset(
    r for r, p in ROLE_PERMISSIONS.items() if Permission.INCIDENTS_MANAGE in p
)
MAX_MEMBERS = 500
MAX_PROBLEMS = 50


class DepartmentNotFound(NotFound):
    pass


class TeamNotFound(NotFound):
    pass


class CellNotFound(NotFound):
    pass


class OrgConflict(Conflict):
    pass


class OrgInvalid(Invalid):
    """Every problem of one request, each naming its field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems[:MAX_PROBLEMS]
        more = len(problems) - len(self.problems)
        text = "; ".join(self.problems) + (f"; and {more} more" if more > 0 else "")
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class DepartmentDraft:
    name: str
    line: str
    site: str | None = None
    supervisor: str | None = None
    commander: str | None = None


@dataclass(frozen=True, slots=True)
class TeamDraft:
    site: str
    name: str
    members: list[str] = field(default_factory=list)
    leader: str | None = None


@dataclass(frozen=True, slots=True)
class Team:
    row: Any
    members: list[str]


@dataclass(frozen=True, slots=True)
class Responsibility:
    """A cell's team (id, name, leader) and, per line of work, its department (id, name)."""

    team: dict[str, Any] | None
    departments: dict[str, dict[str, Any]]


def check_responsibility(
    conn: Connection,
    vocabulary: Vocabulary,
    *,
    site: str,
    team_id: str | None,
    by_line: Mapping[str, Any],
    where: str = "",
    teams: Mapping[str, Any] | None = None,
    departments: Mapping[str, Any] | None = None,
) -> list[str]:
    """The problems of naming ``team_id`` and ``by_line`` for a cell of ``site`` (empty: fine).
    ``teams``/``departments`` are lookups an import fetched once for all of its cells."""
    problems: list[str] = []
    lines = {ln.id for ln in vocabulary.lines}
    if team_id is not None:
        found = (teams or {}).get(team_id) if teams is not None else repository.team(conn, team_id)
        if found is None:
            problems.append(f"{where}team: no team {team_id!r}")
        elif found.site != site:
            problems.append(
                f"{where}team: team {team_id!r} belongs to site {found.site!r}, not {site!r}"
            )
    for line, dep_id in by_line.items():
        # Cut long names: an imported file decides these, and a problem list stays readable.
        here = f"{where}departments.{line[:64]}"
        if line not in lines:
            problems.append(
                f"{here}: {line[:64]!r} is not a line of work (known: {', '.join(sorted(lines))})"
            )
            continue
        if not isinstance(dep_id, str) or len(dep_id) > 64:
            problems.append(f"{here}: a department id is a string of at most 64 characters")
            continue
        dep = (
            (departments or {}).get(dep_id)
            if departments is not None
            else repository.department(conn, dep_id)
        )
        if dep is None:
            problems.append(f"{here}: no department {dep_id!r}")
        elif dep.line != line:
            problems.append(
                f"{here}: department {dep_id!r} works on line {dep.line!r}, not {line!r}"
            )
        elif dep.site is not None and dep.site != site:
            problems.append(f"{here}: department {dep_id!r} serves site {dep.site!r}, not {site!r}")
    return problems


class OrgService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        vocabulary: Vocabulary,
        *,
        hub_site: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.vocabulary = vocabulary
        self.hub_site = hub_site
        self.clock = clock or SystemClock()

    # -- shared checks --------------------------------------------------------------------

    def _site_problem(self, conn: Connection, site: str, where: str) -> str | None:
        if self.hub_site is not None:
            if site == self.hub_site:
                return None
            return f"{where}: this hub serves site {self.hub_site!r}, not {site!r}"
        if geo_repository.site_known(conn, site):
            return None
        return f"{where}: site {site!r} is unknown to this hub: provision a device there first"

    def _user_problems(
        self, conn: Connection, usernames: Mapping[str, str], roles: frozenset[Role], what: str
    ) -> list[str]:
        """``usernames`` maps a field name to a username."""
        known = repository.users_by_name(conn, usernames.values())
        problems = []
        for where, name in usernames.items():
            user = known.get(name)
            if user is None:
                problems.append(f"{where}: no user {name!r}")
            elif not user.active:
                problems.append(f"{where}: user {name!r} is deactivated")
            elif user.role not in {r.value for r in roles}:
                allowed = ", ".join(sorted(r.value for r in roles))
                problems.append(
                    f"{where}: user {name!r} has role {user.role!r}; {what} needs one of {allowed}"
                )
        return problems

    # -- departments ----------------------------------------------------------------------

    def departments(
        self, *, limit: int, after: str | None, site: str | None, line: str | None
    ) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.department_page(conn, limit=limit, after=after, site=site, line=line)

    def department(self, department_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.department(conn, department_id)
        if row is None:
            raise DepartmentNotFound(f"no department {department_id!r}")
        return row

    def _check_department(self, conn: Connection, draft: DepartmentDraft) -> None:
        problems = []
        lines = sorted(ln.id for ln in self.vocabulary.lines)
        if draft.line not in lines:
            problems.append(
                f"line: {draft.line!r} is not a line of work (known: {', '.join(lines)})"
            )
        if draft.site is not None and (p := self._site_problem(conn, draft.site, "site")):
            problems.append(p)
        people = {
            k: v for k, v in (("supervisor", draft.supervisor), ("commander", draft.commander)) if v
        }
        problems += self._user_problems(conn, people, ESCALATION_ROLES, "escalation")
        if problems:
            raise OrgInvalid(problems)

    def _department_values(self, draft: DepartmentDraft) -> dict[str, Any]:
        return {
            "site": draft.site,
            "name": draft.name,
            "line": draft.line,
            "supervisor": draft.supervisor,
            "commander": draft.commander,
            "updated_at": self.clock.now(),
        }

    def create_department(
        self, actor: str, draft: DepartmentDraft, department_id: str | None = None
    ) -> Any:
        dep_id = department_id or new_id()
        with self.audit.change(
            actor, "department.create", dep_id, {"line": draft.line, "name": draft.name}
        ) as conn:
            self._check_department(conn, draft)
            if repository.department(conn, dep_id) is not None:
                raise OrgConflict(f"department id {dep_id!r} is taken")
            try:
                repository.insert_department(conn, {"id": dep_id, **self._department_values(draft)})
            except IntegrityError as err:  # a concurrent create of the same id
                raise OrgConflict(f"department id {dep_id!r} is taken") from err
            return repository.department(conn, dep_id)

    def update_department(self, actor: str, department_id: str, draft: DepartmentDraft) -> Any:
        with self.audit.change(
            actor, "department.update", department_id, {"line": draft.line, "name": draft.name}
        ) as conn:
            current = repository.department(conn, department_id)
            if current is None:
                raise DepartmentNotFound(f"no department {department_id!r}")
            self._check_department(conn, draft)
            if draft.line != current.line:
                cells = repository.cells_naming_department(conn, department_id)
                if cells:
                    raise OrgConflict(
                        f"department {department_id!r} is the {current.line!r} department of "
                        f"grid cells {', '.join(cells)}: reassign them before changing its line"
                    )
            if draft.site is not None and draft.site != current.site:
                self._refuse_site_change(conn, department_id, draft.site)
            repository.update_department(conn, department_id, self._department_values(draft))
            return repository.department(conn, department_id)

    def _refuse_site_change(self, conn: Connection, department_id: str, site: str) -> None:
        others = repository.cells_naming_department(conn, department_id, other_site=site)
        if others:
            raise OrgConflict(
                f"grid cells {', '.join(others)} of another site name department "
                f"{department_id!r}: reassign them before limiting it to site {site!r}"
            )

    def delete_department(self, actor: str, department_id: str) -> None:
        with self.audit.change(actor, "department.delete", department_id) as conn:
            if repository.department(conn, department_id) is None:
                raise DepartmentNotFound(f"no department {department_id!r}")
            cells = repository.cells_naming_department(conn, department_id)
            if cells:
                raise OrgConflict(
                    f"department {department_id!r} is still responsible for grid cells "
                    f"{', '.join(cells)}: give them another department first"
                )
            open_ones = repository.open_incidents_of_department(conn, department_id)
            if open_ones:
                raise OrgConflict(
                    f"department {department_id!r} still has open incidents "
                    f"{', '.join(open_ones)}: close or reroute them first"
                )
            repository.delete_department(conn, department_id)

    # -- teams ----------------------------------------------------------------------------

    def teams(self, *, limit: int, after: str | None, site: str | None) -> list[Team]:
        with self.engine.connect() as conn:
            rows = repository.team_page(conn, limit=limit, after=after, site=site)
            members = repository.members_of(conn, [r.id for r in rows])
        return [Team(r, members[r.id]) for r in rows]

    def team(self, team_id: str) -> Team:
        with self.engine.connect() as conn:
            return self._team(conn, team_id)

    def _team(self, conn: Connection, team_id: str) -> Team:
        row = repository.team(conn, team_id)
        if row is None:
            raise TeamNotFound(f"no team {team_id!r}")
        return Team(row, repository.members_of(conn, [team_id])[team_id])

    def _check_team(self, conn: Connection, draft: TeamDraft) -> None:
        problems = []
        if p := self._site_problem(conn, draft.site, "site"):
            problems.append(p)
        if len(set(draft.members)) != len(draft.members):
            dupes = sorted({m for m in draft.members if draft.members.count(m) > 1})
            problems.append(f"members: listed twice: {', '.join(dupes)}")
        if len(draft.members) > MAX_MEMBERS:
            problems.append(f"members: at most {MAX_MEMBERS} per team")
        people = {f"members[{i}]": m for i, m in enumerate(draft.members)}
        problems += self._user_problems(conn, people, MEMBER_ROLES, "a team member")
        if draft.leader is not None and draft.leader not in draft.members:
            problems.append(f"leader: {draft.leader!r} must also be one of the members")
        if problems:
            raise OrgInvalid(problems)

    def _team_values(self, draft: TeamDraft) -> dict[str, Any]:
        return {
            "site": draft.site,
            "name": draft.name,
            "leader": draft.leader,
            "updated_at": self.clock.now(),
        }

    def create_team(self, actor: str, draft: TeamDraft, team_id: str | None = None) -> Team:
        tid = team_id or new_id()
        details = {"name": draft.name, "members": len(draft.members), "leader": draft.leader}
        with self.audit.change(actor, "team.create", tid, details) as conn:
            self._check_team(conn, draft)
            if repository.team(conn, tid) is not None:
                raise OrgConflict(f"team id {tid!r} is taken")
            try:
                repository.insert_team(conn, {"id": tid, **self._team_values(draft)})
            except IntegrityError as err:
                raise OrgConflict(f"team id {tid!r} is taken") from err
            repository.replace_members(conn, tid, sorted(draft.members))
            return self._team(conn, tid)

    def update_team(self, actor: str, team_id: str, draft: TeamDraft) -> Team:
        """Replace name, leader and the whole member list in one transaction."""
        details = {"name": draft.name, "members": len(draft.members), "leader": draft.leader}
        with self.audit.change(actor, "team.update", team_id, details) as conn:
            current = repository.team(conn, team_id)
            if current is None:
                raise TeamNotFound(f"no team {team_id!r}")
            self._check_team(conn, draft)
            if draft.site != current.site:
                cells = repository.cells_of_team(conn, team_id)
                if cells:
                    raise OrgConflict(
                        f"team {team_id!r} is responsible for grid cells {', '.join(cells)} of "
                        f"site {current.site!r}: reassign them before moving it"
                    )
            repository.update_team(conn, team_id, self._team_values(draft))
            repository.replace_members(conn, team_id, sorted(draft.members))
            return self._team(conn, team_id)

    def delete_team(self, actor: str, team_id: str) -> None:
        with self.audit.change(actor, "team.delete", team_id) as conn:
            if repository.team(conn, team_id) is None:
                raise TeamNotFound(f"no team {team_id!r}")
            cells = repository.cells_of_team(conn, team_id)
            if cells:
                raise OrgConflict(
                    f"team {team_id!r} is still responsible for grid cells {', '.join(cells)}: "
                    "give them another team first"
                )
            repository.delete_team(conn, team_id)

    # -- cell responsibility --------------------------------------------------------------

    def set_responsibility(
        self, actor: str, cell_id: str, team_id: str | None, by_line: Mapping[str, str]
    ) -> Responsibility:
        """Name a cell's team and its department per line (replacing the previous ones)."""
        details = {"team": team_id, "departments": dict(sorted(by_line.items()))}
        with self.audit.change(actor, "cell.responsibility", cell_id, details) as conn:
            cell = repository.cell(conn, cell_id)
            if cell is None:
                raise CellNotFound(f"no grid cell {cell_id!r}")
            problems = check_responsibility(
                conn, self.vocabulary, site=cell.site, team_id=team_id, by_line=by_line
            )
            if problems:
                raise OrgInvalid(problems)
            team_row = repository.team(conn, team_id) if team_id else None
            # The free-text ``team`` follows the team's name, so old clients still show it.
            values: dict[str, Any] = {"team_id": team_id}
            if team_row is not None:
                values["team"] = team_row.name
            try:
                repository.set_cell_team(conn, cell_id, values)
                repository.replace_cell_departments(conn, cell_id, by_line)
            except IntegrityError as err:  # a department or the cell deleted meanwhile
                raise OrgConflict(
                    f"grid cell {cell_id!r} or a department it names changed meanwhile: try again"
                ) from err
            return self._responsibilities(conn, {cell_id: team_id})[cell_id]

    def responsibilities(self, cells: Mapping[str, str | None]) -> dict[str, Responsibility]:
        """Per cell id (mapped to its ``team_id``): its team and departments, in two queries."""
        with self.engine.connect() as conn:
            return self._responsibilities(conn, cells)

    def _responsibilities(
        self, conn: Connection, cells: Mapping[str, str | None]
    ) -> dict[str, Responsibility]:
        team_rows = repository.teams_by_id(conn, [t for t in cells.values() if t])
        deps = repository.departments_of_cells(conn, cells)
        found = {}
        for cell_id, team_id in cells.items():
            row = team_rows.get(team_id) if team_id else None
            team = {"id": row.id, "name": row.name, "leader": row.leader} if row else None
            found[cell_id] = Responsibility(team, deps.get(cell_id, {}))
        return found
