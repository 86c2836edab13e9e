"""``/api/v1/commands``: what the hub sent (or is still sending) to devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, PageDep, encode_cursor, guarded
from hub.api.models import CommandInfo, Paged
from hub.auth import Permission
from hub.commands.service import Command

router = APIRouter(prefix="/api/v1/commands", tags=["commands"])
STATE_PATTERN = "^(pending|sent|answered|failed|superseded)$"


def command_info(command: Command) -> CommandInfo:
    return CommandInfo.model_validate(command, from_attributes=True)


@router.get("", response_model=Paged[CommandInfo], **guarded(Permission.DEVICES_READ))
def list_commands(
    ctx: Ctx,
    page: PageDep,
    device: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    state: Annotated[str | None, Query(pattern=STATE_PATTERN)] = None,
) -> Paged[CommandInfo]:
    """Commands, newest first, filtered by device and state."""
    after = page.after_text()
    items = ctx.commands.page(limit=page.limit, after=after, device=device, state=state)
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[CommandInfo](items=[command_info(c) for c in items], next_cursor=nxt)


@router.get("/{command_id}", response_model=CommandInfo, **guarded(Permission.DEVICES_READ))
def get_command(command_id: Annotated[str, Path(max_length=36)], ctx: Ctx) -> CommandInfo:
    return command_info(ctx.commands.get(command_id))
