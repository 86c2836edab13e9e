"""Incident reports: counts, overdue and times to resolve/close per cell, department, category
and grid worker; CSV and GeoJSON exports; a printable summary page."""
