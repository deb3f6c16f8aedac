"""nodeagent: one small process per node for metrics, logs and DaemonSet placement checks."""

__version__ = "0.1.0"
