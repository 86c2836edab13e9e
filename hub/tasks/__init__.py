"""A grid worker's tasks: the incidents assigned to them, as the field page works them."""
