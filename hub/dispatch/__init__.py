"""Dispatch: officers chosen by cell, distance and availability, notified through the command
outbox, widening rings when nobody acknowledges, the commander told after the last ring."""
