"""The hub's domain errors: what a service raises when it refuses a change or a lookup.

Services never raise HTTP exceptions; routes (through the table in ``hub/api/errors.py``) map
each kind below to one status code. An area names its own errors by subclassing a kind
(``DeviceNotFound(NotFound)``), so the mapping stays one entry per kind.
"""

from __future__ import annotations

from edge.errors import GridwardError


class DomainError(GridwardError):
    """A refusal with a sentence that says what to fix; safe to show to the caller.

    ``code`` (optional, e.g. ``quality.no_face``) names the rule for a client that must tell
    refusals apart without parsing the sentence; the API returns it beside ``detail``."""

    code: str | None = None

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The object named does not exist (or is not visible to this caller)."""


class Conflict(DomainError):
    """The change collides with the current state (an id already taken, a unique name)."""


class Invalid(DomainError):
    """The input breaks a rule the request schema cannot express (geometry, file content)."""


class TooLarge(Invalid):
    """The input is valid but over a size limit (a config push above the wire limit)."""


class Unsupported(Invalid):
    """The input comes in a format this operation does not read."""


class Forbidden(DomainError):
    """The caller is known but may not do this to this object."""


class Unauthenticated(DomainError):
    """Credentials that do not authenticate; the message never says which part was wrong."""


class RateLimited(DomainError):
    """Too many attempts; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A dependency the operation needs (a file, the CA, a service) is not there right now."""
