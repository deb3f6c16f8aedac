"""Run orchestration: resolved settings -> a checked plan -> the jobs, under one asyncio TaskGroup.

Everything that can be refused (settings, collector options, the logs section) is checked while
building the :class:`AgentPlan`, before the port is bound: the agent never starts half-configured.
Shutdown (SIGTERM/SIGINT): the listener closes, in-flight scrapes finish, the log shipper drains and
commits, and the process exits 0, all within :data:`SHUTDOWN_TIMEOUT` seconds.

Reload (SIGHUP): the configuration is read and planned again, exactly as at start. A plan that is refused
is logged and the running configuration stays. Otherwise the new collectors serve the next scrape, a new
``--web.config.file`` path applies to the next connection, and when the ``logs`` section changed the log
shipper drains and commits (as at shutdown) and starts again with the new inputs, filters and sinks from
the same checkpoints: nothing acknowledged is read twice, nothing unacknowledged is lost. What binds
sockets (listen addresses, telemetry path, TLS on or off) needs a restart; a change of it is logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nodeagent import __version__
from nodeagent.config import ConfigError, Settings, node_name
from nodeagent.metrics.registry import Collector, Paths, build_collectors, enabled_collectors
from nodeagent.metrics.scrape import Scraper
from nodeagent.pools import BoundedPool, log_io_pool, scrape_pool

if TYPE_CHECKING:  # imported when run: `nodeagent metrics` plans collectors without aiohttp
    from nodeagent.config.logs import LogsConfig
    from nodeagent.server import MetricsServer
    from nodeagent.webconfig import WebConfigSource

log = logging.getLogger("nodeagent.agent")

SHUTDOWN_TIMEOUT = 4.5  # seconds from the signal to exit; Kubernetes and the issue allow 5


class StartupError(Exception):
    """Something outside the configuration keeps the agent from starting (exit code 1)."""


@dataclass
class AgentPlan:
    """What `run` will do, fully validated."""

    settings: Settings
    node_name: str
    collectors: list[Collector]
    logs_config: LogsConfig | None  # when the log shipper runs
    web_config: WebConfigSource | None = None  # --web.config.file, loaded and checked

    @property
    def runs_logs(self) -> bool:
        return self.logs_config is not None


def host_paths(settings: Settings) -> Paths:
    return Paths(
        procfs=Path(settings["path.procfs"]),
        sysfs=Path(settings["path.sysfs"]),
        rootfs=Path(settings["path.rootfs"]),
        udev_data=Path(settings["path.udev.data"]),
    )


def node_collectors(settings: Settings) -> list[Collector]:
    """The enabled collectors, built with their options; a rejected option is a ConfigError."""
    if not settings["metrics"]:
        return []
    names = enabled_collectors(settings.values, settings["collector.disable-defaults"])
    paths = host_paths(settings)
    built: list[Collector] = []
    for name in names:
        try:
            built.extend(build_collectors([name], paths, settings.values))
        except ConfigError:
            raise
        except (ValueError, re.error) as exc:
            raise ConfigError(str(exc), key=f"collector.{name}") from None
        except Exception as exc:  # a collector bug must not keep the others from running
            log.error("collector cannot be set up; it stays off", extra={"collector": name, "err": repr(exc)})
    return built


def logs_config(settings: Settings) -> LogsConfig | None:
    """The validated logs section when the shipper is to run, else None."""
    wanted = settings["logs"]  # None: as the logs section says
    if wanted is False:
        return None
    try:
        from nodeagent.config.logs import parse_logs_config
    except ImportError as exc:
        raise StartupError(f"the log shipper cannot be loaded ({exc}); run with --no-logs") from None
    config = parse_logs_config(
        settings.structured.get("logs"), source=settings.config_file, rootfs=settings["path.rootfs"]
    )
    if wanted is None and not config.enabled:
        return None
    return config


def shown_sinks(plan: AgentPlan) -> str:
    """The sinks for the start-up log, credentials redacted."""
    return _shown_logs_part(plan, lambda config: ",".join(s.describe() for s in config.sinks))


def shown_inputs(plan: AgentPlan) -> str:
    """The inputs for the start-up log: ``name(read_from):glob|glob`` or ``name(read_from):journald`` each."""

    def show(config: LogsConfig) -> str:
        files = [f"{i.name}({i.read_from}):{'|'.join(i.paths)}" for i in config.inputs]
        return ",".join(files + [f"{j.name}({j.read_from}):journald" for j in config.journals])

    return _shown_logs_part(plan, show)


def _shown_logs_part(plan: AgentPlan, show: Callable[[LogsConfig], str]) -> str:
    if not plan.runs_logs:
        return "none"
    from nodeagent.config.logs import LogsConfig

    config = plan.logs_config
    return (show(config) or "none") if isinstance(config, LogsConfig) else "unknown"


def plan_agent(settings: Settings) -> AgentPlan:
    """Check everything `run` needs; raises ConfigError (exit 2) or StartupError (exit 1)."""
    collectors = node_collectors(settings)
    config = logs_config(settings)
    if not settings["metrics"] and config is None:
        raise ConfigError("nothing to run: node metrics and the log shipper are both off", key="metrics")
    web_config = None
    if settings.get("web.config.file"):
        from nodeagent.webconfig import WebConfigSource

        web_config = WebConfigSource(settings["web.config.file"])
    return AgentPlan(
        settings=settings,
        node_name=node_name(settings),
        collectors=collectors,
        logs_config=config,
        web_config=web_config,
    )


def check_state_dir(plan: AgentPlan) -> None:
    """The log shipper's checkpoints can be written; else ConfigError (exit 2): without them every
    restart would read everything again or skip what was written meanwhile."""
    config = plan.logs_config
    if config is None:
        return
    from nodeagent.logs.checkpoint import CheckpointStore

    try:
        CheckpointStore(config.checkpoint_path).probe()
    except OSError as exc:
        section = plan.settings.structured.get("logs")
        line_of = getattr(section, "line_of", None)
        line = line_of("state_dir") if line_of is not None else None
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot write checkpoints in {config.state_dir} ({reason}, uid {os.geteuid()}): "
            "make it writable for this user or point state_dir elsewhere",
            key=("logs", "state_dir"),
            file=plan.settings.config_file if line else None,
            line=line,
        ) from None


def make_scraper(plan: AgentPlan) -> Scraper:
    return Scraper(
        plan.collectors,
        exporter_metrics=not plan.settings["web.disable-exporter-metrics"],
        stuck_after=plan.settings["web.scrape-timeout"],
    )


def make_pools() -> dict[str, BoundedPool]:
    """One bounded pool per job: "scrape" (collectors, rendering) and "logs" (the shipper's file I/O)."""
    return {
        "scrape": scrape_pool(),
        "logs": log_io_pool(),
    }


async def _serve(server: MetricsServer, stop: asyncio.Event) -> None:
    try:
        await stop.wait()
    finally:
        await server.stop()


class LogJob:
    """The log shipper under the agent: runs it, and on reload drains it and starts it again."""

    def __init__(
        self, config: LogsConfig | None, node_name: str, ready: asyncio.Event | None, pool: BoundedPool
    ) -> None:
        self.config = config
        self.node_name = node_name
        self.ready = ready if ready is not None else asyncio.Event()
        self.pool = pool
        self._changed = asyncio.Event()

    def replace(self, config: LogsConfig | None) -> bool:
        """Use ``config`` from now on; True when it differs (the shipper is then restarted)."""
        if config == self.config:
            return False
        self.config = config
        self._changed.set()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._changed.clear()
            config = self.config
            if config is None:  # turned off by a reload; a later reload may turn it on again
                await _first_of(stop.wait(), self._changed.wait())
                continue
            # Imported only once the shipper runs: with the logs off it would cost ~4 MB of RSS.
            from nodeagent.logs.shipper import run_logs

            own_stop = asyncio.Event()
            shipper = asyncio.create_task(
                run_logs(
                    config, node_name=self.node_name, stop=own_stop, ready=self.ready, executor=self.pool
                ),
                name="log-shipper-run",
            )
            try:
                await _first_of(shipper, stop.wait(), self._changed.wait())
            finally:
                if not shipper.done():
                    own_stop.set()  # drain and commit, as at shutdown
                    await shipper
            shipper.result()
            if not (stop.is_set() or self._changed.is_set()):
                raise RuntimeError("the log shipper stopped on its own")
            if not stop.is_set():
                log.info("log shipper restarting with the new configuration")


async def _first_of(*awaitables: Awaitable[object]) -> None:
    """Wait until one of ``awaitables`` is done; the others are cancelled unless they are tasks."""
    futures = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, given in zip(futures, awaitables, strict=True):
            if future is not given:
                future.cancel()


async def _announce_ready(server: MetricsServer, logs_ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Log when the shipper is up; gives up at shutdown so that the task group can finish."""
    await _first_of(logs_ready.wait(), stop.wait())
    if logs_ready.is_set():
        log.info("log shipper started", extra={"ready": server.ready})


def _install_signal_handlers(stop: asyncio.Event, reload: asyncio.Event | None) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed = []
    if reload is not None:
        try:
            loop.add_signal_handler(signal.SIGHUP, reload.set)
            installed.append(signal.SIGHUP)
        except (NotImplementedError, RuntimeError, ValueError):
            pass

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.warning("already shutting down", extra={"signal": signum.name})
            return
        log.info("shutting down", extra={"signal": signum.name})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / not Unix
            pass
    return installed


BOUND_AT_START = (
    "web.listen-address",
    "web.systemd-socket",
    "web.telemetry-path",
    "web.max-connections",
    "web.max-requests",
    "metrics",
)


async def _reload(
    replan: Callable[[], AgentPlan], current: AgentPlan, server: MetricsServer, logs: LogJob
) -> AgentPlan:
    """Plan again and apply what can change while running; returns the plan now in force."""
    from nodeagent.agentmetrics import CONFIG_RELOAD_SUCCESSFUL, CONFIG_RELOAD_TIME

    try:
        plan = await asyncio.to_thread(replan)
    except (ConfigError, StartupError) as exc:
        CONFIG_RELOAD_SUCCESSFUL.set(0)
        log.error("configuration reload refused; the running configuration stays", extra={"err": str(exc)})
        return current
    except Exception as exc:  # a bug in planning must not take the running agent down
        CONFIG_RELOAD_SUCCESSFUL.set(0)
        log.error("configuration reload failed; the running configuration stays", extra={"err": repr(exc)})
        return current
    kept = [key for key in BOUND_AT_START if plan.settings.get(key) != current.settings.get(key)]
    tls_before = bool(current.web_config and current.web_config.tls_enabled)
    tls_after = bool(plan.web_config and plan.web_config.tls_enabled)
    if tls_before != tls_after or (current.web_config is None) != (plan.web_config is None):
        kept.append("web.config.file")
    elif plan.web_config is not None:
        server.web_config = plan.web_config
    if kept:
        log.warning("these settings take effect only after a restart", extra={"settings": ",".join(kept)})
    server.scraper = make_scraper(plan)
    restarted = logs.replace(plan.logs_config)
    CONFIG_RELOAD_SUCCESSFUL.set(1)
    CONFIG_RELOAD_TIME.set(time.time())
    log.info(
        "configuration reloaded",
        extra={
            "collectors": ",".join(c.name for c in plan.collectors) or "none",
            "logs": "restarting" if restarted else ("unchanged" if plan.runs_logs else "off"),
            "inputs": shown_inputs(plan),
            "sinks": shown_sinks(plan),
        },
    )
    return plan


async def _reload_on_signal(
    requested: asyncio.Event,
    replan: Callable[[], AgentPlan],
    plan: AgentPlan,
    server: MetricsServer,
    logs: LogJob,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        await _first_of(requested.wait(), stop.wait())
        if stop.is_set():
            return
        requested.clear()
        log.info("reloading the configuration", extra={"signal": "SIGHUP"})
        plan = await _reload(replan, plan, server, logs)


async def run_agent(
    plan: AgentPlan,
    *,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    started: asyncio.Event | None = None,
    replan: Callable[[], AgentPlan] | None = None,
    reload: asyncio.Event | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the exit code.

    Raises :class:`nodeagent.server.ListenError` when the address cannot be bound (exit code 2).
    ``started`` is set once the server listens (for embedding and tests). ``replan`` reads the
    configuration again; with it, SIGHUP (or setting ``reload``) reloads.
    """
    from nodeagent import runtime
    from nodeagent.server import MetricsServer

    stop = stop if stop is not None else asyncio.Event()
    if replan is not None and reload is None:
        reload = asyncio.Event()
    installed = _install_signal_handlers(stop, reload if replan else None) if handle_signals else []
    settings = plan.settings
    loop = asyncio.get_running_loop()
    runtime.quiet_loop_errors(loop)
    open_files = runtime.raise_open_file_limit()
    pools = make_pools()
    # The log shipper is handed its pool; the loop's default executor (asyncio.to_thread elsewhere in the
    # shipper's sinks, aiohttp's resolver) is that pool too, so nothing of it lands on the scrape pool.
    loop.set_default_executor(pools["logs"])
    logs_ready = asyncio.Event() if plan.runs_logs else None
    logs = LogJob(plan.logs_config, plan.node_name, logs_ready, pools["logs"])
    max_connections = settings["web.max-connections"]
    if max_connections and open_files != resource.RLIM_INFINITY and max_connections > open_files // 2:
        max_connections = max(open_files // 2, 1)  # leave descriptors for log files and checkpoints
        log.warning(
            "fewer HTTP connections than configured: the open-file limit is low",
            extra={"max_connections": max_connections, "open_files": open_files},
        )
    server = MetricsServer(
        make_scraper(plan),
        listen_address=settings["web.listen-address"],
        telemetry_path=settings["web.telemetry-path"],
        max_requests=settings["web.max-requests"],
        logs_ready=logs_ready,
        max_connections=max_connections,
        scrape_timeout=settings["web.scrape-timeout"],
        pool=pools["scrape"],
        job_pools={"log shipper": pools["logs"]} if plan.runs_logs else None,
        stall_timeout=settings["web.stall-timeout"],
        web_config=plan.web_config,
        systemd_socket=settings["web.systemd-socket"],
    )
    try:
        await server.start()
        runtime.settle_after_startup()
        log.info(
            "nodeagent started",
            extra={
                "version": __version__,
                "node": plan.node_name,
                "config": settings.config_file or "none",
                "collectors": ",".join(c.name for c in plan.collectors) or "none",
                "logs": "on" if plan.runs_logs else "off",
                "inputs": shown_inputs(plan),
                "sinks": shown_sinks(plan),
                "listen": ",".join(server.addresses),
                "path": settings["web.telemetry-path"],
            },
        )
        if started is not None:
            started.set()

        async def jobs() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(_serve(server, stop), name="http-server")
                group.create_task(logs.run(stop), name="log-shipper")
                if logs_ready is not None:
                    group.create_task(_announce_ready(server, logs_ready, stop), name="log-ready")
                if replan is not None and reload is not None:
                    group.create_task(
                        _reload_on_signal(reload, replan, plan, server, logs, stop), name="config-reload"
                    )

        return await _supervise(asyncio.create_task(jobs(), name="agent-jobs"), stop)
    finally:
        loop = asyncio.get_running_loop()
        for signum in installed:
            loop.remove_signal_handler(signum)


async def _supervise(jobs: asyncio.Task[None], stop: asyncio.Event) -> int:
    """Wait for a signal (or a job failing), then give the jobs SHUTDOWN_TIMEOUT to finish."""
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({jobs, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()  # a failed job stops the rest too
    stopped.cancel()
    await asyncio.wait({jobs}, timeout=SHUTDOWN_TIMEOUT)
    if not jobs.done():
        log.error(
            "shutdown took too long; stopping without waiting further",
            extra={"timeout_seconds": SHUTDOWN_TIMEOUT},
        )
        jobs.cancel()
        await asyncio.wait({jobs})
        return 1
    if jobs.cancelled():
        return 1
    error = jobs.exception()
    if error is None:
        log.info("stopped")
        return 0
    for failure in getattr(error, "exceptions", [error]):
        log.error("agent job failed", exc_info=failure, extra={"err": repr(failure)})
    return 1
