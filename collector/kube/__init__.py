"""collector.kube."""
