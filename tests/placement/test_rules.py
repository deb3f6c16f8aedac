"""Each placement rule on its own, then whole DaemonSets against the real node lists."""

from __future__ import annotations

import yaml

from nodeagent.placement.model import Condition, Taint, node_from_obj
from nodeagent.placement.rules import Rule, Verdict, evaluate, index_usage, toleration_yaml
from nodeagent.placement.sources import daemonsets_from, load_path, nodes_from, pods_from
from tests.placement.builders import (
    DAEMONSETS,
    KIND_NODES,
    KIND_PODS,
    MODERN_NODES,
    MODERN_PODS,
    OPENSHIFT_NODES,
    SEEDS,
    make_ds,
    make_node,
    make_pod,
    requests_container,
)

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
MASTER_TAINT = {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}


def check(ds, *nodes, pods=()):
    return evaluate(ds, list(nodes), index_usage(pods))


def only(result):
    assert len(result.nodes) == 1
    return result.nodes[0]


def rules_of(node_result):
    return [reason.rule for reason in node_result.reasons]


# ---------------------------------------------------------------- controller: node name, selector, affinity


def test_node_name_excludes_every_other_node():
    ds = make_ds({"nodeName": "node-a"})
    result = check(ds, make_node("node-a"), make_node("node-b"))
    assert [n.verdict for n in result.nodes] == [Verdict.RUNS, Verdict.EXCLUDED]
    assert rules_of(result.nodes[1]) == ["nodeName"]


def test_node_selector_names_the_label_and_the_fix():
    ds = make_ds({"nodeSelector": {"disktype": "ssd"}})
    missing = only(check(ds, make_node("n1")))
    assert missing.verdict == Verdict.EXCLUDED
    assert "node has no label disktype" in missing.reasons[0].message
    assert missing.reasons[0].fix.startswith("kubectl label node n1 disktype=ssd")
    other = only(check(ds, make_node("n2", labels={"disktype": "hdd"})))
    assert "node has disktype=hdd" in other.reasons[0].message
    assert only(check(ds, make_node("n3", labels={"disktype": "ssd"}))).verdict == Verdict.RUNS


def test_windows_node_left_out_by_os_selector_has_no_fix():
    ds = make_ds({"nodeSelector": {"kubernetes.io/os": "linux"}})
    result = only(check(ds, make_node("win", labels={"kubernetes.io/os": "windows"})))
    assert result.verdict == Verdict.EXCLUDED and result.reasons[0].fix is None


def _affinity(*terms):
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
            }
        }
    }


def test_required_affinity_terms_or_and_expressions_and():
    ds = make_ds(
        _affinity(
            {
                "matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a"]},
                    {"key": "gpu", "operator": "DoesNotExist"},
                ]
            },
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["infra"]}]},
        )
    )
    a = make_node("a", labels={"zone": "a"})
    a_gpu = make_node("a-gpu", labels={"zone": "a", "gpu": "t4"})
    infra = make_node("infra", labels={"pool": "infra", "gpu": "t4"})
    result = check(ds, a, a_gpu, infra)
    assert [n.verdict for n in result.nodes] == [Verdict.RUNS, Verdict.EXCLUDED, Verdict.RUNS]
    message = result.nodes[1].reasons[0].message
    assert "term 1: gpu DoesNotExist: node has gpu=t4" in message
    assert "term 2: pool In [infra]: node has no label pool" in message


def test_affinity_match_fields_on_node_name():
    ds = make_ds(_affinity({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["b"]}]}))
    result = check(ds, make_node("a"), make_node("b"))
    assert [n.verdict for n in result.nodes] == [Verdict.RUNS, Verdict.EXCLUDED]
    assert "node name is b" in result.nodes[1].reasons[0].message


def test_single_in_requirement_suggests_the_label():
    ds = make_ds(_affinity({"matchExpressions": [{"key": "team", "operator": "In", "values": ["obs"]}]}))
    assert only(check(ds, make_node("a"))).reasons[0].fix.startswith("kubectl label node a team=obs")


def test_invalid_affinity_term_matches_nothing_and_warns():
    ds = make_ds(_affinity({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["new"]}]}))
    result = check(ds, make_node("a", labels={"gen": "5"}))
    assert only(result).verdict == Verdict.EXCLUDED
    assert any("term 1 is invalid" in w for w in result.warnings)


def test_node_selector_and_affinity_must_both_match():
    ds = make_ds(
        {"nodeSelector": {"kubernetes.io/os": "linux"}}
        | _affinity({"matchExpressions": [{"key": "zone", "operator": "Exists"}]})
    )
    assert rules_of(only(check(ds, make_node("a")))) == ["nodeAffinity"]
    assert only(check(ds, make_node("b", labels={"zone": "z"}))).verdict == Verdict.RUNS


# ---------------------------------------------------------------- controller: taints


def test_control_plane_taint_blocks_and_the_fix_yaml_works():
    ds_spec = {}
    node = make_node("cp", labels={"node-role.kubernetes.io/control-plane": ""}, taints=[CP_TAINT])
    blocked = only(check(make_ds(ds_spec), node))
    assert blocked.verdict == Verdict.BLOCKED and node.control_plane
    reason = blocked.reasons[0]
    assert reason.rule == "taint" and "node-role.kubernetes.io/control-plane:NoSchedule" in reason.message
    # The fix is literal YAML: applying it makes the pod run.
    fix_yaml = reason.fix.split(":\n", 1)[1].split("\n(")[0]
    fixed = make_ds({"tolerations": yaml.safe_load(fix_yaml)})
    assert only(check(fixed, node)).verdict == Verdict.RUNS


def test_taint_with_value_gets_an_equal_toleration():
    text = toleration_yaml(Taint("nvidia.com/gpu", "present", "NoSchedule"))
    assert yaml.safe_load(text) == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]


def test_no_execute_taint_blocks_and_prefer_no_schedule_does_not():
    ds = make_ds()
    assert (
        only(check(ds, make_node("a", taints=[{"key": "k", "effect": "NoExecute"}]))).verdict
        == Verdict.BLOCKED
    )
    assert (
        only(check(ds, make_node("b", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))).verdict
        == Verdict.RUNS
    )


def test_cordoned_node_still_gets_the_pod():
    node = make_node(
        "a", unschedulable=True, taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    )
    assert only(check(make_ds(), node)).verdict == Verdict.RUNS


def test_pressure_taints_are_tolerated_by_the_controller():
    taints = [
        {"key": f"node.kubernetes.io/{k}-pressure", "effect": "NoSchedule"} for k in ("disk", "memory", "pid")
    ]
    assert only(check(make_ds(), make_node("a", taints=taints))).verdict == Verdict.RUNS


def test_network_unavailable_needs_host_network():
    node = make_node("a", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])
    blocked = only(check(make_ds(), node))
    assert blocked.verdict == Verdict.BLOCKED and "hostNetwork" in blocked.reasons[0].fix
    assert only(check(make_ds({"hostNetwork": True}), node)).verdict == Verdict.RUNS


def test_not_ready_taint_explains_the_node_state():
    node = make_node(
        "a",
        ready="False",
        taints=[
            {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
        ],
    )
    result = only(check(make_ds(), node))
    assert result.verdict == Verdict.BLOCKED
    assert [r.message for r in result.reasons] == [
        "taint node.kubernetes.io/not-ready:NoSchedule is not tolerated: "
        "the node controller marks the node NotReady"
    ]


def test_excluded_wins_over_blocked_and_lists_both():
    ds = make_ds({"nodeSelector": {"pool": "x"}})
    result = only(check(ds, make_node("a", taints=[{"key": "k", "effect": "NoSchedule"}])))
    assert result.verdict == Verdict.EXCLUDED and rules_of(result) == ["nodeSelector", "taint"]


# ---------------------------------------------------------------- scheduler and kubelet


def test_not_ready_node_without_taint_is_pending():
    result = only(check(make_ds(), make_node("a", ready="False")))
    assert result.verdict == Verdict.PENDING and rules_of(result) == ["notReady"]
    assert only(check(make_ds(), make_node("b", ready=None))).verdict == Verdict.PENDING


def test_network_not_ready_blocks_only_pods_that_need_the_pod_network():
    cni_missing = make_node("a", ready="False")
    cni_missing.conditions["Ready"] = Condition(
        "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false"
    )
    plain = only(check(make_ds(), cni_missing))
    assert plain.verdict == Verdict.PENDING and "pod network" in plain.reasons[0].message
    assert only(check(make_ds({"hostNetwork": True}), cni_missing)).verdict == Verdict.RUNS
    kubelet_gone = make_node("b", ready="Unknown")
    assert only(check(make_ds({"hostNetwork": True}), kubelet_gone)).verdict == Verdict.PENDING


def test_disk_pressure_rejects_non_critical_pods_only():
    node = make_node("a", conditions={"DiskPressure": "True"})
    assert rules_of(only(check(make_ds(), node))) == ["notReady"]
    assert only(check(make_ds({"priorityClassName": "system-node-critical"}), node)).verdict == Verdict.RUNS
    memory_only = make_node("b", conditions={"MemoryPressure": "True"})
    assert only(check(make_ds(), memory_only)).verdict == Verdict.RUNS


def test_insufficient_cpu_counts_existing_pods_but_not_finished_ones():
    ds = make_ds({"containers": [requests_container(cpu="500m")]})
    node = make_node("a", allocatable={"cpu": "1"})
    busy = make_pod("busy", "a", containers=[requests_container(cpu="600m")])
    done = make_pod("done", "a", containers=[requests_container(cpu="900m")], phase="Succeeded")
    elsewhere = make_pod("other", "b", containers=[requests_container(cpu="900m")])
    result = only(check(ds, node, pods=[busy, done, elsewhere]))
    assert result.verdict == Verdict.PENDING
    assert result.reasons[0].message == (
        "insufficient cpu: the pod requests 500m, 400m free of 1 allocatable "
        "(600m requested by the 1 other pod(s))"
    )
    assert only(check(ds, node, pods=[done, elsewhere])).verdict == Verdict.RUNS


def test_limits_only_daemonset_is_checked_by_its_limits():
    ds = make_ds({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"memory": "2Gi"}}}]})
    result = only(check(ds, make_node("a", allocatable={"memory": "1Gi"})))
    assert result.verdict == Verdict.PENDING and "insufficient memory" in result.reasons[0].message


def test_own_daemonset_pods_do_not_count_against_it():
    ds = make_ds({"containers": [requests_container(cpu="600m")]}, name="agent", namespace="ops")
    node = make_node("a", allocatable={"cpu": "1", "pods": "1"})
    old = make_pod(
        "agent-x1",
        "a",
        namespace="ops",
        owner=("DaemonSet", "agent"),
        containers=[requests_container(cpu="600m")],
    )
    assert only(check(ds, node, pods=[old])).verdict == Verdict.RUNS
    stranger = make_pod(
        "agent-x1",
        "a",
        namespace="other",
        owner=("DaemonSet", "agent"),
        containers=[requests_container(cpu="600m")],
    )
    assert rules_of(only(check(ds, node, pods=[stranger]))) == ["podCount", "resources"]


def test_extended_resource_missing_on_node():
    ds = make_ds(
        {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    )
    plain = only(check(ds, make_node("cpu-only")))
    assert plain.verdict == Verdict.PENDING and "the node has none" in plain.reasons[0].message
    gpu = make_node("gpu", allocatable={"nvidia.com/gpu": "2"})
    assert only(check(ds, gpu)).verdict == Verdict.RUNS


def test_pod_count_limit():
    node = make_node("a", allocatable={"pods": "2"})
    pods = [make_pod("p1", "a"), make_pod("p2", "a")]
    result = only(check(make_ds(), node, pods=pods))
    assert rules_of(result) == ["podCount"]
    assert "already runs 2 pods and allows 2" in result.reasons[0].message


def test_node_without_allocatable_is_pending():
    bare = node_from_obj(
        {"metadata": {"name": "bare"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}, []
    )
    assert rules_of(only(check(make_ds(), bare))) == ["resources"]


def _port_ds(port, protocol="TCP", host_ip=None, host_network=False):
    entry = {"containerPort": port, "protocol": protocol}
    if not host_network:
        entry["hostPort"] = port
    if host_ip:
        entry["hostIP"] = host_ip
    return make_ds(
        {"hostNetwork": host_network, "containers": [{"name": "c", "image": "x", "ports": [entry]}]}
    )


def _port_pod(name, port, protocol="TCP", host_ip=None, **kwargs):
    entry = {"containerPort": port, "hostPort": port, "protocol": protocol}
    if host_ip:
        entry["hostIP"] = host_ip
    return make_pod(name, "a", containers=[{"name": "c", "image": "x", "ports": [entry]}], **kwargs)


def test_host_port_conflicts_follow_protocol_and_host_ip_rules():
    node = make_node("a")
    taken = [_port_pod("exporter", 9100)]
    result = only(check(_port_ds(9100, host_network=True), node, pods=taken))
    assert result.verdict == Verdict.PENDING and rules_of(result) == ["hostPort"]
    assert "default/exporter" in result.reasons[0].message
    assert only(check(_port_ds(9100, "UDP"), node, pods=taken)).verdict == Verdict.RUNS
    specific = [_port_pod("bound", 9100, host_ip="10.0.0.1")]
    assert only(check(_port_ds(9100, host_ip="10.0.0.2"), node, pods=specific)).verdict == Verdict.RUNS
    assert only(check(_port_ds(9100, host_ip="10.0.0.1"), node, pods=specific)).verdict == Verdict.PENDING
    assert only(check(_port_ds(9100), node, pods=specific)).verdict == Verdict.PENDING  # 0.0.0.0 wants all
    assert only(check(_port_ds(9100, host_ip="10.0.0.2"), node, pods=taken)).verdict == Verdict.PENDING


def test_own_pod_holding_the_host_port_is_not_a_conflict():
    node = make_node("a")
    mine = _port_pod("agent-1", 9100, owner=("DaemonSet", "agent"))
    assert only(check(_port_ds(9100), node, pods=[mine])).verdict == Verdict.RUNS


# ---------------------------------------------------------------- warnings


def test_tolerating_only_one_control_plane_key_warns_even_without_such_nodes():
    legacy = make_ds(
        {
            "tolerations": [
                {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}
            ]
        }
    )
    result = check(legacy, make_node("worker"))
    assert any("but not node-role.kubernetes.io/control-plane:NoSchedule" in w for w in result.warnings)
    modern = make_ds(
        {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}
    )
    assert any(
        "but not node-role.kubernetes.io/master:NoSchedule" in w
        for w in check(modern, make_node("w")).warnings
    )
    both = make_ds({"tolerations": [{"operator": "Exists"}]})
    assert not check(both, make_node("w")).warnings


def test_timed_no_execute_toleration_warns_about_eviction():
    ds = make_ds(
        {
            "tolerations": [
                {"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
            ]
        }
    )
    node = make_node("a", taints=[{"key": "maintenance", "effect": "NoExecute"}])
    result = check(ds, node)
    assert only(result).verdict == Verdict.RUNS
    assert any("tolerated for 60s only" in w and "a" in w for w in result.warnings)


def test_windows_nodes_without_os_selector_warn():
    result = check(make_ds(), make_node("win", labels={"kubernetes.io/os": "windows"}))
    assert any("Windows node(s) win" in w for w in result.warnings)


def test_invalid_toleration_is_reported():
    result = check(make_ds({"tolerations": [{"value": "x"}]}), make_node("a"))
    assert any("empty key" in w for w in result.warnings)


# ---------------------------------------------------------------- real node lists


def _load(ds_path, nodes_path, pods_path=None):
    problems = []
    nodes = nodes_from(load_path(str(nodes_path)), problems)
    pods = pods_from(load_path(str(pods_path)), problems) if pods_path else []
    (ds,) = daemonsets_from(load_path(str(ds_path)))
    return evaluate(ds, nodes, index_usage(pods))


def _verdicts(result):
    return {n.node.name: n.verdict.value for n in result.nodes}


def test_seed_examples_without_tolerations_miss_every_control_plane_node():
    for seed in ("01-nginx-daemonset.yaml", "03-node-exporter-daemonset.yaml"):
        for nodes in (OPENSHIFT_NODES, KIND_NODES, MODERN_NODES):
            result = _load(SEEDS / seed, nodes)
            control_plane = [n for n in result.nodes if n.node.control_plane]
            assert control_plane, nodes
            assert all(n.verdict == Verdict.BLOCKED for n in control_plane)


def test_fluentd_seed_misses_modern_control_plane_and_warns():
    modern = _load(SEEDS / "02-fluentd-daemonset.yaml", MODERN_NODES, MODERN_PODS)
    assert _verdicts(modern)["cp-1"] == "blocked"
    assert any("not node-role.kubernetes.io/control-plane" in w for w in modern.warnings)
    legacy = _load(SEEDS / "02-fluentd-daemonset.yaml", OPENSHIFT_NODES)
    assert all(n.verdict == Verdict.RUNS for n in legacy.nodes)  # legacy taint: fine here, warned anyway
    assert any("not node-role.kubernetes.io/control-plane" in w for w in legacy.warnings)


def test_node_exporter_on_the_modern_cluster():
    result = _load(DAEMONSETS / "kube-prometheus-node-exporter.daemonset.yaml", MODERN_NODES, MODERN_PODS)
    assert _verdicts(result) == {
        "cp-1": "runs",
        "worker-1": "pending",  # legacy-exporter holds host port 9100
        "worker-full": "pending",  # 50m cpu left, the pod needs 112m
        "worker-maxpods": "pending",
        "gpu-1": "runs",
        "spot-1": "runs",
        "worker-notready": "runs",  # tolerates every taint; NotReady for lack of CNI, and it is hostNetwork
        "win-1": "excluded",
    }
    by_node = {n.node.name: n for n in result.nodes}
    assert rules_of(by_node["worker-1"]) == ["hostPort"]
    assert rules_of(by_node["worker-full"]) == ["resources"]
    assert rules_of(by_node["worker-maxpods"]) == ["podCount"]


def test_kind_cluster_requests_from_real_pods():
    # kind-control-plane already has 950m requested (etcd, apiserver, controller-manager, scheduler,
    # two coredns, kindnet); its allocatable cpu is 8.
    tolerate_all = [{"operator": "Exists"}]
    problems = []
    nodes = nodes_from(load_path(str(KIND_NODES)), problems)
    usage = index_usage(pods_from(load_path(str(KIND_PODS)), problems))
    fits = make_ds({"tolerations": tolerate_all, "containers": [requests_container(cpu="7050m")]})
    too_big = make_ds({"tolerations": tolerate_all, "containers": [requests_container(cpu="7051m")]})
    assert _verdicts(evaluate(fits, nodes, usage))["kind-control-plane"] == "runs"
    assert _verdicts(evaluate(too_big, nodes, usage))["kind-control-plane"] == "pending"
    # The kindnet DaemonSet's own 100m pod is replaced, not added to.
    kindnet = make_ds(
        {"tolerations": tolerate_all, "containers": [requests_container(cpu="7150m")]},
        name="kindnet",
        namespace="kube-system",
    )
    assert _verdicts(evaluate(kindnet, nodes, usage))["kind-control-plane"] == "runs"


def test_every_reason_names_a_member_of_the_closed_rule_enum_and_every_member_is_reported():
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}
                ]
            }
        }
    }
    excluding = make_ds({"nodeName": "elsewhere", "nodeSelector": {"pool": "infra"}, "affinity": affinity})
    tainted = make_node("a", taints=[{"key": "dedicated", "effect": "NoSchedule"}])
    port = {"containerPort": 80, "hostPort": 80}
    busy = make_ds({"containers": [requests_container(cpu="8") | {"ports": [port]}]})
    sick = make_node("b", ready="False", allocatable={"pods": "1"})
    holder = make_pod("holder", "b", containers=[{"name": "c", "image": "x", "ports": [port]}])
    windows = make_node("w", labels={"kubernetes.io/os": "windows"})
    reasons = (
        only(check(excluding, tainted)).reasons
        + only(check(busy, sick, pods=[holder])).reasons
        + only(check(make_ds(), windows)).reasons
    )
    assert all(isinstance(reason.rule, Rule) for reason in reasons)
    assert {reason.rule for reason in reasons} == set(Rule)
