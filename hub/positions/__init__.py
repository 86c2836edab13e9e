"""Positions: the newest per entity and the stored history (track playback)."""
