"""Possible face matches: human review, officer verification, crop views, retention."""
