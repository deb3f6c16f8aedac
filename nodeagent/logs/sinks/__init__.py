"""Sinks: one module per destination, all behind :class:`nodeagent.logs.sinks.base.Sink`."""
