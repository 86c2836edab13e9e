"""Open311 GeoReport v2: services (the field-reportable categories), requests, request status."""
