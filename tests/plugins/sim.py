"""Simulator fixtures (owned by the simulator work)."""
