"""Watchlists: governed entries (reason, legal basis, approver, expiry), photos encrypted at
rest, embeddings computed at the hub (docs/watchlists.md)."""
