"""Entry points: the HTTP API, the CLI, and the composition root that starts the roles."""
