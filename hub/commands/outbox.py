"""``CommandOutbox``: how a service sends something to a device.

A service calls :meth:`CommandOutbox.enqueue` with the connection of its own transaction, so
the command exists exactly when the change that caused it commits (a rolled-back change
leaves no command behind), then :meth:`CommandOutbox.wake` after the commit. Nothing here
touches MQTT: :class:`hub.commands.publisher.CommandPublisher` publishes committed rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from edge.protocol import (
    CHANNEL_QOS,
    CMD_MODELS,
    RETAINED,
    CmdChannel,
    Message,
    ProtocolError,
    encode,
)
from edge.validators import utcnow
from hub.commands import repository
from hub.errors import Invalid, TooLarge

Clock = Callable[[], datetime]
SUPERSEDED = "a newer command on this channel replaced it"


class CommandOutbox:
    def __init__(self, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._wake = threading.Event()

    def enqueue(
        self,
        conn: Connection,
        message: Message,
        channel: CmdChannel,
        *,
        created_by: str,
        qos: int | None = None,
        retain: bool | None = None,
        supersede: bool = False,
    ) -> str:
        """Write ``message`` for ``message.device`` in the caller's transaction; returns its id.

        ``supersede``: older open commands on the same device and channel stop being retried
        (a retained config push makes every earlier one moot; an officer notification does not).
        ``qos`` and ``retain`` default to the wire contract's choice for the channel.
        Raises :class:`hub.errors.TooLarge` or ``Invalid`` before writing anything.
        """
        model = CMD_MODELS.get(channel)
        if model is None or not isinstance(message, model):
            raise Invalid(f"a {type(message).__name__} cannot go on the {channel} channel")
        qos = CHANNEL_QOS[channel] if qos is None else qos
        retain = channel in RETAINED if retain is None else retain
        if qos not in (0, 1, 2):
            raise Invalid(f"qos {qos} is not 0, 1 or 2")
        try:
            payload = encode(message)
        except ProtocolError as err:
            raise (TooLarge if err.reason == "too_large" else Invalid)(str(err)) from err
        now = self._clock()
        repository.insert(
            conn,
            {
                "id": message.id,
                "site": message.site,
                "device": message.device,
                "channel": channel.value,
                "payload": payload,
                "qos": qos,
                "retain": retain,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "created_by": created_by,
            },
        )
        if supersede:
            repository.supersede_open(conn, message.device, channel.value, message.id, SUPERSEDED)
        return message.id

    def wake(self) -> None:
        """Tell the publisher there is work (call after the enqueuing transaction commits)."""
        self._wake.set()

    def wait(self, timeout_s: float) -> bool:
        woken = self._wake.wait(timeout_s)
        self._wake.clear()
        return woken
