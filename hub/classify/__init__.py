"""Suggest an incident category for a field report from its description (Chinese or English)."""
