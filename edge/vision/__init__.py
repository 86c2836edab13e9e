"""What the agents with a camera share: boxes, GStreamer ingest, the box tracker, snapshots."""
