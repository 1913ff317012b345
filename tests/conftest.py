"""Shared test fixtures live in tests/plugins/: pg (real PostgreSQL), sim (simulated clusters)."""

pytest_plugins = ["tests.plugins.pg", "tests.plugins.sim"]
