"""The kustomize manifests: they render, validate strictly, and say what the DaemonSet must do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from nodeagent.cli import build_parser, resolve_from_args
from nodeagent.config import settings_table
from nodeagent.config.logs import own_output_excludes, parse_logs_config
from tests.deploy.conftest import COMPONENTS, EXAMPLES, MANIFESTS, find, rendering_namespace
from tests.deploy.crd_schemas import SCHEMAS
from tests.placement.fake_apiserver import check_placement, recorded_cluster, serving

OLDEST_SUPPORTED = "1.28.0"
NEWEST_SHIPPED = kubernetes_validate.latest_version()
RENDERINGS = ["manifests", *(str(p.relative_to(MANIFESTS.parent)) for p in (*COMPONENTS, *EXAMPLES))]
BASE_KINDS = {"Namespace", "ResourceQuota", "ServiceAccount", "ConfigMap", "Service", "DaemonSet"}
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def test_every_rendering_is_covered() -> None:
    assert COMPONENTS, "manifests/components/* has no component"
    assert EXAMPLES, "examples/ has no overlay"
    assert "manifests/components/prometheus-operator" in RENDERINGS


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_renders_the_whole_install(rendering: str, all_renderings: dict[str, list[dict[str, Any]]]) -> None:
    objects = all_renderings[rendering]
    kinds = {o["kind"] for o in objects}
    assert kinds >= BASE_KINDS
    namespace = rendering_namespace(rendering)
    assert find(objects, "Namespace")["metadata"]["name"] == namespace
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == namespace, f"{obj['kind']} {obj['metadata']['name']}"


@pytest.mark.parametrize("version", [OLDEST_SUPPORTED, NEWEST_SHIPPED])
@pytest.mark.parametrize("rendering", RENDERINGS)
def test_objects_validate_strictly(
    rendering: str, version: str, all_renderings: dict[str, list[dict[str, Any]]]
) -> None:
    """Built-in kinds against Kubernetes' own schemas; the operator's kinds against crd_schemas."""
    for obj in all_renderings[rendering]:
        custom_schema = SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if custom_schema is not None:
            jsonschema.validate(obj, custom_schema)
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{obj['kind']} {obj['metadata']['name']} is invalid for Kubernetes {version}: {exc.message}"
            )
        # SchemaNotFoundError (a kind neither Kubernetes nor crd_schemas knows) propagates and fails.


def test_custom_resource_schema_rejects_a_misspelt_field(
    all_renderings: dict[str, list[dict[str, Any]]],
) -> None:
    objects = all_renderings["examples/prometheus-operator"]
    monitor = find(objects, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["relabellings"] = monitor["spec"]["endpoints"][0].pop("relabelings")
    with pytest.raises(jsonschema.ValidationError, match="relabellings"):
        jsonschema.validate(monitor, SCHEMAS[("monitoring.coreos.com/v1", "ServiceMonitor")])


# ------------------------------------------------------------------------------------------- DaemonSet


def test_daemonset_runs_on_every_node(daemonset: dict[str, Any]) -> None:
    pod = daemonset["spec"]["template"]["spec"]
    # One toleration without key, of any effect: every taint, NoExecute ones (not-ready, unreachable) too.
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    assert "nodeSelector" not in pod
    required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    not_windows = {"key": "kubernetes.io/os", "operator": "NotIn", "values": ["windows"]}
    assert required["nodeSelectorTerms"] == [{"matchExpressions": [not_windows]}]


def test_quota_admits_the_critical_priority_class(
    base_objects: list[dict[str, Any]], daemonset: dict[str, Any]
) -> None:
    quota = find(base_objects, "ResourceQuota")
    [scope] = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert scope == {
        "scopeName": "PriorityClass",
        "operator": "In",
        "values": [daemonset["spec"]["template"]["spec"]["priorityClassName"]],
    }
    assert int(quota["spec"]["hard"]["pods"]) >= 5000  # Kubernetes' largest supported cluster


def test_daemonset_uses_the_host_namespaces(daemonset: dict[str, Any]) -> None:
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"


def _mounts(daemonset: dict[str, Any], container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the mount joined with its volume."""
    volumes = {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: {**m, "volume": volumes[m["name"]]} for m in container["volumeMounts"]}


@pytest.mark.parametrize(
    ("mount_path", "host_path", "propagation"),
    [
        ("/host/proc", "/proc", None),
        ("/host/sys", "/sys", None),
        ("/host/root", "/", "HostToContainer"),
        ("/var/log", "/var/log", None),
        ("/var/lib/docker/containers", "/var/lib/docker/containers", None),
    ],
)
def test_host_paths_are_mounted_read_only(
    daemonset: dict[str, Any],
    container: dict[str, Any],
    mount_path: str,
    host_path: str,
    propagation: str | None,
) -> None:
    mount = _mounts(daemonset, container)[mount_path]
    assert mount["volume"]["hostPath"]["path"] == host_path
    assert mount.get("readOnly") is True
    assert mount.get("mountPropagation") == propagation


def test_state_dir_is_a_writable_host_directory(daemonset: dict[str, Any], container: dict[str, Any]) -> None:
    mount = _mounts(daemonset, container)["/var/lib/nodeagent"]
    assert mount["volume"]["hostPath"] == {"path": "/var/lib/nodeagent", "type": "DirectoryOrCreate"}
    assert not mount.get("readOnly")
    config = yaml.safe_load((MANIFESTS / "config.yaml").read_text())
    assert config["logs"]["state_dir"] == "/var/lib/nodeagent"


def test_path_flags_point_at_the_host_mounts(daemonset: dict[str, Any], container: dict[str, Any]) -> None:
    mounts = _mounts(daemonset, container)
    host_mount = {
        m["volume"]["hostPath"]["path"]: path for path, m in mounts.items() if "hostPath" in m["volume"]
    }
    flags = dict(arg.split("=", 1) for arg in container["args"] if arg.startswith("--path."))
    assert flags == {
        "--path.procfs": host_mount["/proc"],
        "--path.sysfs": host_mount["/sys"],
        "--path.rootfs": host_mount["/"],
        "--path.udev.data": host_mount["/"] + "/run/udev/data",
    }
    # The image's default config (the same file) says the same, for runs without these flags.
    config = yaml.safe_load((MANIFESTS / "config.yaml").read_text())
    assert config["path"] == {
        "procfs": "/host/proc",
        "sysfs": "/host/sys",
        "rootfs": "/host/root",
        "udev": {"data": "/host/root/run/udev/data"},
    }


def test_container_is_locked_down(daemonset: dict[str, Any], container: dict[str, Any]) -> None:
    pod_security = daemonset["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    # UID 0 with DAC_READ_SEARCH only: see the comment in daemonset.yaml.
    assert pod_security["runAsUser"] == 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}


def test_node_name_comes_from_the_downward_api(container: dict[str, Any]) -> None:
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_the_shipper_skips_its_own_container_log(container: dict[str, Any]) -> None:
    """The env the DaemonSet sets is what the log shipper reads to leave out its own pod's log."""
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    fake_pod = {
        "metadata.name": "nodeagent-x1",
        "metadata.namespace": "nodeagent",
        "metadata.uid": "u-1",
        "spec.nodeName": "node-1",
    }
    environ = {name: fake_pod[field] for name, field in env.items()}
    config = parse_logs_config(_config_document()["logs"], environ=environ)
    assert own_output_excludes(config.sinks, environ), "no own-pod exclude: a stdout sink would loop"
    pods = next(i for i in config.inputs if i.name == "pods")
    assert any("nodeagent_nodeagent-x1_u-1" in pattern for pattern in pods.exclude)


def test_resources_and_probes(container: dict[str, Any]) -> None:
    resources = container["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert resources["limits"] == {"memory": "256Mi"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_rolling_update_and_grace_period(daemonset: dict[str, Any]) -> None:
    strategy = daemonset["spec"]["updateStrategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"]
    assert strategy["rollingUpdate"].get("maxSurge", 0) == 0  # two agents cannot share host port 9100
    assert daemonset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


# ------------------------------------------------------------------------------------------- config


def _config_document() -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "config.yaml").read_text())


def test_configmap_is_the_config_file(
    base_objects: list[dict[str, Any]], daemonset: dict[str, Any], container: dict[str, Any]
) -> None:
    configmap = find(base_objects, "ConfigMap")
    assert configmap["data"] == {"config.yaml": (MANIFESTS / "config.yaml").read_text()}
    volumes = {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/nodeagent")
    assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    assert container["args"][:2] == ["run", "--config=/etc/nodeagent/config.yaml"]


def test_agent_accepts_the_daemonset_command_line(tmp_path: Path, container: dict[str, Any]) -> None:
    """The DaemonSet's args with the ConfigMap's file go through the agent's own parser and checks."""
    from nodeagent.agent import plan_agent

    config_file = tmp_path / "config.yaml"
    config_file.write_text((MANIFESTS / "config.yaml").read_text())
    args = [arg.replace("/etc/nodeagent/config.yaml", str(config_file)) for arg in container["args"]]
    table = settings_table()
    settings = resolve_from_args(build_parser("run", table).parse_args(args), table)
    plan = plan_agent(settings)
    assert settings["web.listen-address"] == ":9100"
    assert settings["path.procfs"] == "/host/proc"
    assert plan.collectors, "no node collector enabled"
    assert plan.logs_config is not None
    assert str(plan.logs_config.state_dir) == "/var/lib/nodeagent"
    assert [s.type for s in plan.logs_config.sinks] == ["stdout"]
    assert {i.name: i.paths for i in plan.logs_config.inputs} == {
        "pods": ("/var/log/pods/*/*/*.log",),
        "system": ("/var/log/*.log", "/var/log/syslog", "/var/log/messages"),
    }


def test_commented_loki_example_is_valid_once_uncommented() -> None:
    text = (MANIFESTS / "config.yaml").read_text()
    block = re.search(r"^(    # - type: loki\n(?:    #   .*\n)+)", text, re.MULTILINE)
    assert block, "the Loki example is missing from config.yaml"
    uncommented = text.replace(block[1], re.sub(r"^    # ", "    ", block[1], flags=re.MULTILINE))
    config = parse_logs_config(yaml.safe_load(uncommented)["logs"], environ={})
    loki = next(s for s in config.sinks if s.type == "loki")
    assert loki.options["url"] == "http://loki.monitoring:3100"


# ------------------------------------------------------------------------------------------- Service, RBAC


def test_headless_metrics_service_selects_the_agents(
    base_objects: list[dict[str, Any]], daemonset: dict[str, Any]
) -> None:
    service = find(base_objects, "Service", "nodeagent")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert daemonset["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9100"


def test_servicemonitor_selects_the_service(all_renderings: dict[str, list[dict[str, Any]]]) -> None:
    objects = all_renderings["manifests/components/prometheus-operator"]
    monitor, service = find(objects, "ServiceMonitor"), find(objects, "Service", "nodeagent")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    # job="nodeagent", which the alert rules select on.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "nodeagent"


# ------------------------------------------------------------------------------------------- privileges


def _grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(verb, API group, resource) triples a role grants, with no wildcards allowed."""
    granted = set()
    for rule in role["rules"]:
        assert not rule.keys() - {"apiGroups", "resources", "verbs"}, (
            "resourceNames/nonResourceURLs unexpected"
        )
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb)
                    granted.add((verb, group, resource))
    return granted


def test_base_grants_no_api_access_and_mounts_no_token(
    base_objects: list[dict[str, Any]], daemonset: dict[str, Any]
) -> None:
    """The collectors and the log shipper read only the host: no RBAC, and no token in the pod at all."""
    assert not [o for o in base_objects if o["kind"] in RBAC_KINDS]
    account_name = daemonset["spec"]["template"]["spec"]["serviceAccountName"]
    account = find(base_objects, "ServiceAccount", account_name)
    assert account["automountServiceAccountToken"] is False
    assert daemonset["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def _rbac_request(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str]:
    """The (verb, API group, resource) RBAC checks for one request of a read-only client."""
    assert method == "GET", (method, path)
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    if query.get("watch") in ("1", "true"):
        return "watch", group, rest[0]
    return ("get" if len(rest) > 1 else "list"), group, rest[0]


async def _live_mode_requests(tmp_path: Path) -> set[tuple[str, str, str]]:
    """Every request `check-placement --live` makes, in each of its modes, against the recorded API."""
    cluster = recorded_cluster()
    async with serving(cluster, tmp_path) as kubeconfig:
        live = ("--live", "--kubeconfig", str(kubeconfig), "--context", "test")
        for extra in ((), ("--daemonset", "kube-system/kindnet"), ("-f", str(MANIFESTS / "daemonset.yaml"))):
            code, _, err = await check_placement(*live, *extra)
            assert code in (0, 1), err
    return {_rbac_request(*request) for request in cluster.requests}


async def test_placement_checker_component_grants_exactly_what_live_mode_calls(
    tmp_path: Path, all_renderings: dict[str, list[dict[str, Any]]]
) -> None:
    objects = all_renderings["manifests/components/placement-checker"]
    role = find(objects, "ClusterRole", "nodeagent-placement-checker")
    used = await _live_mode_requests(tmp_path)
    assert used == {
        ("list", "", "nodes"),
        ("list", "", "pods"),
        ("list", "apps", "daemonsets"),
        ("list", "", "events"),
    }
    assert _grants(role) == used
    binding = find(objects, "ClusterRoleBinding", "nodeagent-placement-checker")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "nodeagent-placement-checker",
    }
    # Its own account, not the agents': the DaemonSet still has no token and no binding.
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "nodeagent-placement-checker", "namespace": "nodeagent"}
    ]
    assert (
        find(objects, "ServiceAccount", "nodeagent-placement-checker")["automountServiceAccountToken"] is True
    )
    pod = find(objects, "DaemonSet", "nodeagent")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "nodeagent" and pod["automountServiceAccountToken"] is False
    assert {o["metadata"]["name"] for o in objects if o["kind"] in RBAC_KINDS} == {
        "nodeagent-placement-checker"
    }


def test_pod_metadata_component_reads_pods_only_and_is_not_enabled(
    all_renderings: dict[str, list[dict[str, Any]]],
) -> None:
    objects = all_renderings["manifests/components/pod-metadata"]
    role = find(objects, "ClusterRole", "nodeagent-pod-metadata")
    assert _grants(role) == {("get", "", "pods"), ("list", "", "pods"), ("watch", "", "pods")}
    binding = find(objects, "ClusterRoleBinding", "nodeagent-pod-metadata")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "nodeagent", "namespace": "nodeagent"}]
    assert find(objects, "ServiceAccount", "nodeagent")["automountServiceAccountToken"] is True
    pod = find(objects, "DaemonSet", "nodeagent")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    # Prepared for the pod-metadata watch, used by no overlay until the agent has that feature.
    for example in EXAMPLES:
        assert "pod-metadata" not in (example / "kustomization.yaml").read_text()
    for rendering, rendered in all_renderings.items():
        if rendering != "manifests/components/pod-metadata":
            assert not [o for o in rendered if o["metadata"]["name"] == "nodeagent-pod-metadata"], rendering


def test_systemd_collectors_component_adds_the_bus_socket_and_the_flags(
    all_renderings: dict[str, list[dict[str, Any]]],
) -> None:
    """The agent takes the flags; the only thing mounted is the host's bus socket, read-only, where the
    D-Bus client looks for it."""
    from nodeagent.metrics.host.dbus import DEFAULT_SYSTEM_BUS

    pod = find(all_renderings["manifests/components/systemd-collectors"], "DaemonSet", "nodeagent")
    spec = pod["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert {"--collector.systemd", "--collector.logind"} <= set(container["args"])
    table = settings_table()
    settings = resolve_from_args(build_parser("run", table).parse_args(container["args"][:1] + [
        arg for arg in container["args"][1:] if not arg.startswith(("--config", "--path."))
    ]), table)  # fmt: skip
    assert settings["collector.systemd"] and settings["collector.logind"]
    volume = next(v for v in spec["volumes"] if v["name"] == "dbus-system-bus")
    assert volume["hostPath"] == {"path": "/run/dbus/system_bus_socket", "type": "Socket"}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "dbus-system-bus")
    assert mount["readOnly"] is True
    assert f"unix:path={mount['mountPath']}" == DEFAULT_SYSTEM_BUS
