"""``CommandPublisher``: publishes committed command rows, retries them until the device
answers, and fails them after the configured attempts or age.

One pass (:meth:`CommandPublisher.publish_due`) is: record answers (Replies citing a command
id, from the device it was sent to; no write transaction when there are none), fail what is
exhausted or too old and claim the due rows in one short transaction, publish them *after*
that transaction commits, and mark the published ones sent in one more. A notify waits for
this pass (bench/e2e.py) and every write transaction queues behind ingest for SQLite's one
writer: the pass used to make three before its first publish and one per command. A claim
counts the attempt and moves ``next_attempt_at`` forward, guarded by the attempt count read,
so two replicas scanning one PostgreSQL publish each attempt once; a publish that never left
(broker down) gives its attempt back.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from edge.bus import Bus, BusError
from edge.protocol import CmdChannel, cmd_topic
from edge.validators import utcnow
from hub.commands import repository
from hub.commands.config import CommandOutboxConfig
from hub.commands.outbox import CommandOutbox
from hub.commands.repository import Claimed

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class CommandPublisher:
    def __init__(
        self,
        engine: Engine,
        bus: Bus,
        outbox: CommandOutbox,
        config: CommandOutboxConfig,
        clock: Clock = utcnow,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.outbox = outbox
        self.config = config
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats: Counter[str] = Counter()
        self.last_pass_at: datetime | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hub-commands", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.outbox.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish_due()
            except SQLAlchemyError as err:
                self.stats["store_errors"] += 1
                log.warning("command outbox pass failed, retrying next pass: %s", err)
            except Exception:  # the publisher must outlive any one bad pass
                self.stats["errors"] += 1
                log.exception("command outbox pass failed")
            self.outbox.wait(self.config.scan_interval_s)

    # -- one pass -------------------------------------------------------------------------

    def publish_due(self) -> int:
        """Run one pass; returns how many commands were published."""
        now = self._clock()
        self.record_answers(now)  # first: an answered command must not be sent again
        claimed = self._claim(now)
        published = [c.id for c in claimed if self._publish(c)]
        if published:
            with self.engine.begin() as conn:
                repository.mark_sent(conn, published, self._clock())
            self.stats["published"] += len(published)
        self.last_pass_at = now
        return len(published)

    def record_answers(self, now: datetime | None = None) -> int:
        """Mark commands answered whose device's Reply ingest has stored."""
        now = now or self._clock()
        marked = 0
        # Looked up outside a write transaction: most passes find nothing to record, and
        # then take no write lock at all.
        with self.engine.connect() as conn:
            if not repository.answered_candidates(conn):
                return 0
        with self.engine.begin() as conn:
            for command_id, device, payload in repository.answered_candidates(conn):
                try:
                    ok, error = repository.reply_answer(payload)
                except ValueError:
                    self.stats["bad_replies"] += 1
                    continue
                if repository.mark_answered(conn, command_id, device, ok=ok, error=error, now=now):
                    marked += 1
        self.stats["answered"] += marked
        return marked

    def _claim(self, now: datetime) -> list[Claimed]:
        """Fail the exhausted and the expired, then claim what is due: one transaction."""
        claimed: list[Claimed] = []
        with self.engine.begin() as conn:
            self.stats["failed"] += repository.fail_exhausted(conn, self.config.max_attempts, now)
            self.stats["failed"] += repository.fail_expired(
                conn, timedelta(seconds=self.config.max_age_s), now
            )
            for row in repository.due(conn, now, self.config.max_attempts, self.config.batch_max):
                attempts = row.attempts + 1
                retry_at = now + timedelta(seconds=self.config.retry_delay_s(attempts))
                if repository.claim(conn, row, retry_at):
                    claimed.append(
                        Claimed(
                            row.id,
                            row.site,
                            row.device,
                            row.channel,
                            bytes(row.payload),
                            row.qos,
                            row.retain,
                            attempts,
                        )
                    )
                else:
                    self.stats["claims_lost"] += 1
        return claimed

    def _publish(self, command: Claimed) -> bool:
        try:
            topic = cmd_topic(command.site, command.device, CmdChannel(command.channel))
        except ValueError as err:
            # A row no retry can fix (written by hand or by a newer hub): fail it, keep going.
            self.stats["unpublishable"] += 1
            with self.engine.begin() as conn:
                repository.fail_one(conn, command.id, f"cannot be published: {err}")
            log.warning("command %s cannot be published: %s", command.id, err)
            return False
        try:
            self.bus.publish(topic, command.payload, qos=command.qos, retain=command.retain)
        except BusError as err:
            self.stats["broker_unavailable"] += 1
            retry_at = self._clock() + timedelta(seconds=self.config.broker_retry_s)
            with self.engine.begin() as conn:
                repository.release(conn, command, retry_at, f"broker unreachable: {err}")
            log.info("command %s to %s not published yet: %s", command.id, command.device, err)
            return False
        return True
