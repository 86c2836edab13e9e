"""The hub-to-device command outbox: rows written with the change that causes them, published
after commit, retried until the device answers (docs/hub.md, "Command outbox")."""
