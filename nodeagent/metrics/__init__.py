"""Node metrics: one module per collector, registered in :mod:`nodeagent.metrics.registry`."""
