"""Watchlist bundles: the hub's signing key, each device's bundle key, one hub-wide version per
change of the active set, sealed per device and pushed through the command outbox
(docs/watchlists.md, "Bundles")."""
