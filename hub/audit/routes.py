"""HTTP for the audit log: query it, and verify it with the hub's own keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import AuditFailure, AuditRecord, AuditVerify, Paged
from hub.audit import repository
from hub.auth import Permission

router = APIRouter(prefix="/api/v1", tags=["audit"])
MAX_SEQ = 2**63 - 1  # BIGINT


@router.get("/audit", response_model=Paged[AuditRecord], **guarded(Permission.AUDIT_READ))
def audit_query(
    ctx: Ctx,
    page: PageDep,
    *,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Paged[AuditRecord]:
    """Audit records, newest first."""
    try:
        before_seq = page.after_int()
    except (TypeError, ValueError, OverflowError):
        before_seq = -1
    if before_seq is not None and not 0 <= before_seq <= MAX_SEQ:
        raise HTTPException(422, "cursor is not one this API issued: pass next_cursor as is")
    q = repository.AuditQuery(
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        before_seq=before_seq,
    )
    with ctx.engine.connect() as conn:
        rows = repository.query(conn, q, page.limit)
    items = [AuditRecord.model_validate(r._mapping) for r in rows]
    nxt = encode_cursor([items[-1].seq]) if len(items) == page.limit else None
    return Paged[AuditRecord](items=items, next_cursor=nxt)


@router.get("/audit/verify", response_model=AuditVerify, **guarded(Permission.AUDIT_READ))
def audit_verify(ctx: Ctx, me: Me) -> AuditVerify:
    """Walk the HMAC chain and check the signed checkpoints; name every failing record or
    checkpoint and say what could not be checked."""
    result = ctx.audit.verify()
    ctx.audit.record(me.username, "audit.verify", "", {"ok": result.ok})
    return AuditVerify(
        ok=result.ok,
        records=result.records,
        problems=result.problems,
        head_hash=result.head_hash,
        failures=[
            AuditFailure(kind=f.kind, reason=f.reason, record_seq=f.seq, checkpoint_line=f.line)
            for f in result.failures
        ],
        not_checked=result.not_checked,
        legacy_records=result.legacy_records,
        checkpoints=result.checkpoints,
        hmac_checked=result.hmac_checked,
        checkpoints_checked=result.checkpoints_checked,
    )
