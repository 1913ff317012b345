"""collector.store."""
