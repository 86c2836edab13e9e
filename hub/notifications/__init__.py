"""A user's inbox: assignments, reminders and escalations (rendered from catalogue keys)."""
