"""Three-colour cell warnings: computed from open incidents and alert rates, overridable."""
