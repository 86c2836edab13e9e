"""What the command dashboard's map needs beyond the data API: map settings, local tiles, the
offline outline, and devices placed on the map with a health-derived status."""
