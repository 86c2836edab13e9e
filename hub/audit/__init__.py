"""The tamper-evident audit log: an HMAC-keyed hash chain in the database plus Ed25519-signed
checkpoints outside it (docs/hub.md, "Audit log").

``chain`` and ``checkpoints`` are pure; ``repository`` holds the SQL; ``service`` the rules
(:class:`AuditTrail`, :func:`verify`); ``routes`` the HTTP API.
"""

from hub.audit.chain import CHAIN_HMAC, CHAIN_LEGACY, GENESIS, record_hash, record_mac
from hub.audit.checkpoints import Checkpoint, CheckpointKeyError
from hub.audit.keys import AuditKeyError
from hub.audit.report import Failure, VerifyResult
from hub.audit.service import (
    AuditLogKeyedError,
    AuditPaths,
    AuditSettings,
    AuditTrail,
    append,
    verify,
    write_transaction,
)

__all__ = [
    "CHAIN_HMAC",
    "CHAIN_LEGACY",
    "GENESIS",
    "AuditKeyError",
    "AuditLogKeyedError",
    "AuditPaths",
    "AuditSettings",
    "AuditTrail",
    "Checkpoint",
    "CheckpointKeyError",
    "Failure",
    "VerifyResult",
    "append",
    "record_hash",
    "record_mac",
    "verify",
    "write_transaction",
]
