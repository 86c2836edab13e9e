"""The district's organisation: departments per line of work, teams of grid workers, and
which of them is responsible for each grid cell."""
