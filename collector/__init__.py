"""kubeinv: asynchronous multi-cluster Kubernetes inventory collector."""

__version__ = "0.1.0"
