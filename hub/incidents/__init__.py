"""Incidents: from alerts, field reports and operators to a department, worked and closed."""
