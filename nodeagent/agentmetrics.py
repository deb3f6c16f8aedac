"""The agent's own metrics (process_*, python_*, nodeagent_*), kept apart from node metrics.

Every module that counts something about the agent itself registers its metrics on ``AGENT_REGISTRY``;
the server exposes it beside the node collectors on the same /metrics.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from nodeagent import __version__

AGENT_REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=AGENT_REGISTRY)
PlatformCollector(registry=AGENT_REGISTRY)
GCCollector(registry=AGENT_REGISTRY)

BUILD_INFO = Gauge(
    "nodeagent_build_info",
    "nodeagent version and the Python that runs it; always 1.",
    ["version", "pythonversion", "implementation"],
    registry=AGENT_REGISTRY,
)
BUILD_INFO.labels(__version__, platform.python_version(), platform.python_implementation()).set(1)

CONFIG_RELOAD_SUCCESSFUL = Gauge(
    "nodeagent_config_last_reload_successful",
    "Whether the last configuration reload (SIGHUP) succeeded; 1 before any reload.",
    registry=AGENT_REGISTRY,
)
CONFIG_RELOAD_SUCCESSFUL.set(1)
CONFIG_RELOAD_TIME = Gauge(
    "nodeagent_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully (start or SIGHUP), Unix time.",
    registry=AGENT_REGISTRY,
)
CONFIG_RELOAD_TIME.set_to_current_time()
