"""Users, roles, login and API tokens (the primitives live in ``hub.auth``)."""
