"""Alerts from devices: query, acknowledge, notes, evidence."""
