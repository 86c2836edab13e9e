"""Geography: zones, grid cells (with their warning colour) and points of interest, GeoJSON
in and out."""
