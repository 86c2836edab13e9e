"""The hub process: one MQTT connection, the store, and ingest."""

from __future__ import annotations

import logging

from edge.bus import Bus
from hub.config import HubConfig
from hub.ingest import Ingest
from hub.store import Store

log = logging.getLogger(__name__)


class HubService:
    def __init__(self, config: HubConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store or Store(config.database_url)
        self.bus = Bus(config.mqtt, client_id=config.client_id)
        self.ingest = Ingest(
            self.bus,
            self.store,
            site=config.site or "+",
            queue_max=config.ingest_queue_max,
            batch_max=config.ingest_batch_max,
        )

    def start(self) -> None:
        self.ingest.attach()
        self.ingest.start()
        self.bus.start()

    def stop(self) -> None:
        # Store and ack what is queued while the connection is still up; anything arriving
        # after that is not acked, so its device sends it again.
        self.ingest.stop()
        self.bus.stop()
        self.store.close()
