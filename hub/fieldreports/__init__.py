"""Field reports from grid workers and Open311 clients: idempotent intake, photos, status."""
