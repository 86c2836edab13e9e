"""Users, roles, passwords (argon2id), session and API tokens, login rate limiting.

Tokens are random 256-bit strings shown to their owner once; only their SHA-256 is stored.
Every API route names one permission; a role is a set of permissions (``ROLE_PERMISSIONS``).
These are the primitives; the rules around them (login, logout, user administration, audit)
are in ``hub/users/service.py`` and their SQL in ``hub/users/repository.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection

from edge.validators import new_id, utcnow
from hub.errors import Invalid, Unauthenticated
from hub.users import repository


class Role(StrEnum):
    ADMIN = "admin"
    COMMANDER = "commander"
    OPERATOR = "operator"
    OFFICER = "officer"
    INSTALLER = "installer"
    AUDITOR = "auditor"
    WORKER = "worker"  # a grid worker: reports problems from the field, follows their reports


class Permission(StrEnum):
    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"
    DEVICES_CONFIG = "devices:config"
    POSITIONS_READ = "positions:read"
    ALERTS_READ = "alerts:read"
    ALERTS_ACK = "alerts:ack"
    ZONES_READ = "zones:read"
    ZONES_WRITE = "zones:write"
    CELLS_READ = "cells:read"
    CELLS_WRITE = "cells:write"
    CELLS_WARN = "cells:warn"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    AUDIT_READ = "audit:read"
    LIVE_READ = "live:read"
    STATS_READ = "stats:read"
    INGEST_REJECTED_READ = "ingest:rejected:read"  # dead letters hold raw device bytes: admin only
    ORG_READ = "org:read"  # departments, teams, who is responsible for a cell
    ORG_WRITE = "org:write"
    INCIDENTS_READ = "incidents:read"
    INCIDENTS_WORK = "incidents:work"  # comment, start, resolve the incidents one works
    INCIDENTS_MANAGE = "incidents:manage"  # open by hand, assign, close, reopen, link
    WORKFLOW_READ = "workflow:read"  # routing/alert rules and their dry run
    INCIDENT_STATS_READ = "incidents:stats"  # counts, times to close, exports
    FIELD_REPORTS_SUBMIT = "reports:submit"  # file a field report, follow one's own
    FIELD_REPORTS_READ = "reports:read"  # every field report
    TASKS_WORK = "tasks:work"  # the incidents assigned to oneself: list, accept, start, resolve
    DISPATCH_READ = "dispatch:read"  # officers' availability, every incident's dispatches
    DISPATCH_MANAGE = "dispatch:manage"  # bind glasses, set duty, dispatch and cancel by hand
    DISPATCH_ANSWER = "dispatch:answer"  # an officer's own dispatches and answers, own duty
    WATCHLIST_READ = "watchlist:read"  # entries' governance data (not their photos' bytes)
    WATCHLIST_ENROL = "watchlist:enrol"  # propose an entry with its photo, revoke one
    WATCHLIST_APPROVE = "watchlist:approve"  # approve another user's proposed entry
    MATCHES_READ = "matches:read"  # possible matches, their crops (each view audited)
    MATCHES_REVIEW = "matches:review"  # confirm or reject a possible match
    MATCHES_EXPORT = "matches:export"  # export match records (audited)
    SELF = "self"  # one's own profile and tokens


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.COMMANDER: frozenset(
        {
            P.DEVICES_READ,
            P.DEVICES_CONFIG,
            P.POSITIONS_READ,
            P.ALERTS_READ,
            P.ALERTS_ACK,
            P.ZONES_READ,
            P.ZONES_WRITE,
            P.CELLS_READ,
            P.CELLS_WRITE,
            P.CELLS_WARN,
            P.LIVE_READ,
            P.STATS_READ,
            P.ORG_READ,
            P.ORG_WRITE,
            P.INCIDENTS_READ,
            P.INCIDENTS_WORK,
            P.INCIDENTS_MANAGE,
            P.WORKFLOW_READ,
            P.INCIDENT_STATS_READ,
            P.FIELD_REPORTS_SUBMIT,
            P.FIELD_REPORTS_READ,
            P.DISPATCH_READ,
            P.DISPATCH_MANAGE,
            P.WATCHLIST_READ,
            P.WATCHLIST_ENROL,
            P.WATCHLIST_APPROVE,
            P.MATCHES_READ,
            P.MATCHES_REVIEW,
            P.MATCHES_EXPORT,
            P.SELF,
        }
    ),
    Role.OPERATOR: frozenset(
        {
            P.DEVICES_READ,
            P.POSITIONS_READ,
            P.ALERTS_READ,
            P.ALERTS_ACK,
            P.ZONES_READ,
            P.CELLS_READ,
            P.LIVE_READ,
            P.STATS_READ,
            P.ORG_READ,
            P.INCIDENTS_READ,
            P.INCIDENTS_WORK,
            P.INCIDENTS_MANAGE,
            P.WORKFLOW_READ,
            P.INCIDENT_STATS_READ,
            P.FIELD_REPORTS_READ,
            P.DISPATCH_READ,
            P.DISPATCH_MANAGE,
            P.WATCHLIST_READ,
            P.WATCHLIST_ENROL,
            P.MATCHES_READ,
            P.MATCHES_REVIEW,
            P.SELF,
        }
    ),
    Role.OFFICER: frozenset(
        {
            P.POSITIONS_READ,
            P.ALERTS_READ,
            P.ALERTS_ACK,
            P.ZONES_READ,
            P.CELLS_READ,
            P.LIVE_READ,
            P.ORG_READ,
            P.INCIDENTS_READ,
            P.INCIDENTS_WORK,
            P.FIELD_REPORTS_SUBMIT,
            P.TASKS_WORK,
            P.DISPATCH_ANSWER,
            P.SELF,
        }
    ),
    Role.INSTALLER: frozenset(
        {
            P.DEVICES_READ,
            P.DEVICES_WRITE,
            P.DEVICES_CONFIG,
            P.ZONES_READ,
            P.CELLS_READ,
            P.STATS_READ,
            P.SELF,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            P.AUDIT_READ,
            P.ALERTS_READ,
            P.USERS_READ,
            P.DEVICES_READ,
            P.INCIDENTS_READ,
            P.INCIDENT_STATS_READ,
            P.FIELD_REPORTS_READ,
            P.DISPATCH_READ,
            P.WATCHLIST_READ,
            P.MATCHES_READ,
            P.MATCHES_EXPORT,
            P.SELF,
        }
    ),
    Role.WORKER: frozenset(
        {
            P.CELLS_READ,
            P.ORG_READ,
            P.FIELD_REPORTS_SUBMIT,
            P.TASKS_WORK,
            P.SELF,
        }
    ),
}

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "gw_"  # noqa: S105 - a prefix, not a secret


class AuthError(Unauthenticated):
    """Credentials that do not authenticate; the message never says which part was wrong."""


class WeakPasswordError(Invalid):
    pass


def check_password_strength(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if username.lower() in password.lower():
        raise WeakPasswordError("password must not contain the username")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A fixed hash to verify against when the user does not exist, so response time does not
# reveal which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role
    token_id: str
    token_kind: str

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def create_user(
    conn: Connection, username: str, password: str, role: Role, display_name: str = ""
) -> None:
    check_password_strength(password, username)
    repository.insert_user(
        conn,
        {
            "username": username,
            "display_name": display_name,
            "role": role.value,
            "password_hash": hash_password(password),
            "active": True,
            "created_at": utcnow(),
        },
    )


def authenticate_password(conn: Connection, username: str, password: str) -> Role:
    row = repository.get_user(conn, username)
    if row is None:
        verify_password(_DUMMY_HASH, password)
        raise AuthError("unknown user or wrong password")
    if not verify_password(row.password_hash, password) or not row.active:
        raise AuthError("unknown user or wrong password")
    if _hasher.check_needs_rehash(row.password_hash):
        repository.update_user(conn, username, {"password_hash": hash_password(password)})
    return Role(row.role)


def issue_token(
    conn: Connection, username: str, kind: str, name: str, ttl: timedelta | None
) -> tuple[str, str, datetime | None]:
    """Create a session or API token; returns (token, token id, expiry). Store only its hash."""
    token = new_token()
    token_id = new_id()
    expires = utcnow() + ttl if ttl is not None else None
    repository.insert_token(
        conn,
        {
            "id": token_id,
            "username": username,
            "name": name,
            "kind": kind,
            "token_hash": token_digest(token),
            "created_at": utcnow(),
            "expires_at": expires,
            "revoked": False,
        },
    )
    return token, token_id, expires


def resolve_token(conn: Connection, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = repository.token_with_user(conn, token_digest(token))
    if row is None or row.revoked or not row.active:
        return None
    if row.expires_at is not None and _aware(row.expires_at) < utcnow():
        return None
    return Principal(row.username, Role(row.role), row.id, row.kind)


def _aware(ts: datetime) -> datetime:
    from datetime import UTC

    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


@dataclass(slots=True)
class _KeyState:
    failures: deque[float]
    locked_until: float = 0.0
    strikes: int = 0  # lockouts so far: each one doubles the next
    last_seen: float = 0.0


@dataclass(frozen=True, slots=True)
class LoginTicket:
    """One login attempt admitted by :meth:`LoginRateLimiter.admit`: it already counts as a
    failure, so parallel attempts cannot all pass the check before any of them is counted."""

    keys: tuple[str, ...]
    at: float
    locked: tuple[str, ...]  # keys this attempt locked (if it fails)


class LoginRateLimiter:
    """Failed-login limits per username *and* client address (``pair:`` keys) and, more
    loosely, per client address alone (``addr:`` keys: one address may serve a whole control
    room). There is deliberately no limit by username alone: anyone could then lock the real
    user out by typing wrong passwords under their name.

    ``max_failures`` failures within ``window_s`` lock a key for ``lockout_s``; every further
    lockout of the same key doubles that, up to ``lockout_max_s``. A successful login clears
    its pair. Check and count are one step under one lock (:meth:`admit`), so a parallel burst
    is limited exactly like a serial one.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        address_factor: int = 4,
        lockout_s: float = 60.0,
        lockout_max_s: float = 3600.0,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.address_factor = address_factor
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.lockout_max_s = lockout_max_s
        self._clock = clock
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()
        self.max_keys = max_keys
        self.blocked = 0
        self.lockouts = 0
        self.evicted = 0

    @staticmethod
    def keys_for(username: str, client: str) -> tuple[str, str]:
        return (f"pair:{username.lower()}@{client}", f"addr:{client}")

    def _limit(self, key: str) -> int:
        return self.max_failures * (self.address_factor if key.startswith("addr:") else 1)

    def _state(self, key: str, now: float) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            if len(self._keys) >= self.max_keys:  # bound memory under address spraying
                self._forget(now)
            state = self._keys[key] = _KeyState(deque())
        while state.failures and state.failures[0] <= now - self.window_s:
            state.failures.popleft()
        state.last_seen = now
        return state

    def _forget(self, now: float) -> None:
        idle = now - max(self.window_s, self.lockout_max_s)
        kept = {k: v for k, v in self._keys.items() if v.last_seen > idle or v.locked_until > now}
        if len(kept) >= self.max_keys:
            # Still full of live keys: keep the newer half, locked keys first. Forgetting some
            # failure counts is the lesser harm next to running out of memory.
            newest = sorted(
                kept.items(), key=lambda kv: (kv[1].locked_until > now, kv[1].last_seen)
            )[-(self.max_keys // 2) :]
            kept = dict(newest)
            self.evicted += len(self._keys) - len(kept)
        self._keys = kept

    @property
    def tracked_keys(self) -> int:
        return len(self._keys)

    def admit(self, *keys: str) -> LoginTicket | float:
        """A ticket for one attempt, or the seconds until one may be tried."""
        now = self._clock()
        with self._lock:
            # A refused attempt creates no state: a locked address spraying usernames costs
            # no memory.
            known = [s for s in map(self._keys.get, keys) if s is not None]
            wait = max([0.0, *(s.locked_until - now for s in known)])
            if wait > 0:
                self.blocked += 1
                return wait
            states = [self._state(key, now) for key in keys]
            locked = []
            for key, state in zip(keys, states, strict=True):
                state.failures.append(now)
                if len(state.failures) >= self._limit(key):
                    # Lock now, before the password is even checked: the attempts already in
                    # flight are the last ones this key gets.
                    state.strikes += 1
                    pause = self.lockout_s * 2 ** min(state.strikes - 1, 30)
                    state.locked_until = now + min(pause, self.lockout_max_s)
                    state.failures.clear()
                    locked.append(key)
            return LoginTicket(tuple(keys), now, tuple(locked))

    def failed(self, ticket: LoginTicket) -> tuple[str, ...]:
        """The attempt failed (it is already counted); returns the keys it locked."""
        with self._lock:
            self.lockouts += len(ticket.locked)
        return ticket.locked

    def succeeded(self, ticket: LoginTicket) -> None:
        """The attempt succeeded: its pair starts afresh; the address forgets this attempt."""
        with self._lock:
            self._give_back(ticket)
            for key in ticket.keys:
                if key.startswith("pair:"):
                    self._keys.pop(key, None)

    def cancelled(self, ticket: LoginTicket) -> None:
        """The attempt ended without a verdict (an error): it does not count."""
        with self._lock:
            self._give_back(ticket)

    def _give_back(self, ticket: LoginTicket) -> None:
        for key in ticket.keys:
            state = self._keys.get(key)
            if state is None:
                continue
            with contextlib.suppress(ValueError):
                state.failures.remove(ticket.at)
            if key in ticket.locked:
                state.strikes -= 1
                state.locked_until = 0.0

    def retry_after_s(self, *keys: str) -> float:
        """0 if a login may be tried now for all ``keys``, else seconds until it may."""
        now = self._clock()
        with self._lock:
            states = [s for s in map(self._keys.get, keys) if s is not None]
            return max([0.0, *(s.locked_until - now for s in states)])
