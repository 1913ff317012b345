"""collector.normalize."""
