"""Devices: identities, broker credentials, the ingest gate, health history, config pushes."""
