"""Quantities, effective pod requests (the scheduler's formula) and host ports."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nodeagent.placement.quantity import QuantityError, format_units, parse_quantity, resource_units
from nodeagent.placement.resources import HostPort, pod_host_ports, pod_requests


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Fraction(1, 4)),
        ("2", Fraction(2)),
        ("1.5", Fraction(3, 2)),
        (".5", Fraction(1, 2)),
        ("1Ki", Fraction(1024)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1G", Fraction(10**9)),
        ("1e3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("1E3", Fraction(1000)),
        ("100n", Fraction(1, 10**7)),
        ("-1", Fraction(-1)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


def test_numbers_from_yaml_are_quantities_too():
    assert parse_quantity(2) == 2
    assert parse_quantity(0.5) == Fraction(1, 2)


@pytest.mark.parametrize("bad", ["", "abc", "1Gb", "1 Gi", "Mi", None, True, [1]])
def test_bad_quantities_raise(bad):
    with pytest.raises(QuantityError):
        parse_quantity(bad)


def test_units_round_up_like_kubernetes():
    assert resource_units("cpu", "0.1") == 100
    assert resource_units("cpu", "100u") == 1  # 0.1 millicore rounds up to 1m
    assert resource_units("memory", "1.5") == 2
    assert resource_units("memory", "1Mi") == 1048576


def test_format_units():
    assert format_units("cpu", 2000) == "2" and format_units("cpu", 250) == "250m"
    assert format_units("memory", 200 * 2**20) == "200Mi"
    assert format_units("nvidia.com/gpu", 2) == "2"


def _spec(**parts):
    return {"containers": [{"name": "main", "image": "x"}]} | parts


def _c(requests=None, limits=None, **extra):
    resources = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"name": "c", "image": "x", "resources": resources, **extra}


def requests_of(spec):
    problems = []
    result = pod_requests(spec, "pod", problems)
    return result, problems


def test_containers_add_up():
    spec = {"containers": [_c({"cpu": "100m", "memory": "64Mi"}), _c({"cpu": "50m"})]}
    assert requests_of(spec)[0] == {"cpu": 150, "memory": 64 * 2**20}


def test_limits_without_requests_become_requests():
    spec = {"containers": [_c(limits={"cpu": "200m", "memory": "1Gi"}), _c({"cpu": "10m"}, {"cpu": "1"})]}
    assert requests_of(spec)[0] == {"cpu": 210, "memory": 2**30}


def test_init_containers_count_by_their_peak():
    spec = {
        "initContainers": [_c({"cpu": "500m"}), _c({"memory": "2Gi"})],
        "containers": [_c({"cpu": "100m", "memory": "1Gi"})],
    }
    assert requests_of(spec)[0] == {"cpu": 500, "memory": 2 * 2**30}


def test_sidecars_run_alongside_later_init_containers_and_the_main_containers():
    spec = {
        "initContainers": [
            _c({"cpu": "100m"}, restartPolicy="Always"),  # sidecar
            _c({"cpu": "300m"}),  # runs while the sidecar runs: peak 400m
            _c({"cpu": "50m"}, restartPolicy="Always"),
        ],
        "containers": [_c({"cpu": "200m"})],
    }
    # steady state: 200m + 100m + 50m = 350m; init peak 400m wins
    assert requests_of(spec)[0] == {"cpu": 400}


def test_overhead_is_added():
    spec = {"containers": [_c({"cpu": "100m"})], "overhead": {"cpu": "250m", "memory": "120Mi"}}
    assert requests_of(spec)[0] == {"cpu": 350, "memory": 120 * 2**20}


def test_pod_level_requests_replace_cpu_and_memory():
    spec = {
        "containers": [_c({"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1Gi"})],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
    }
    assert requests_of(spec)[0] == {"cpu": 1000, "memory": 2**30, "ephemeral-storage": 2**30}


def test_pod_level_limits_default_requests_when_no_container_requests():
    spec = {"containers": [_c()], "resources": {"limits": {"cpu": "2"}}}
    assert requests_of(spec)[0] == {"cpu": 2000}


def test_bad_quantity_is_reported_and_skipped():
    result, problems = requests_of({"containers": [_c({"cpu": "lots", "memory": "1Gi"})]})
    assert result == {"memory": 2**30}
    assert problems and "lots" in problems[0]


def test_host_ports_defaults_and_host_network():
    ports = pod_host_ports(
        {
            "containers": [
                {"ports": [{"containerPort": 80}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]}
            ]
        },
        "pod",
        [],
    )
    assert ports == (HostPort("0.0.0.0", "UDP", 53),)
    implied = pod_host_ports(
        {"hostNetwork": True, "containers": [{"ports": [{"containerPort": 9100, "hostIP": "10.0.0.1"}]}]},
        "pod",
        [],
    )
    assert implied == (HostPort("10.0.0.1", "TCP", 9100),)


def test_init_container_ports_are_not_host_ports_for_the_scheduler():
    spec = {"initContainers": [{"ports": [{"containerPort": 1, "hostPort": 1}]}], "containers": []}
    assert pod_host_ports(spec, "pod", []) == ()


def test_bad_host_port_is_reported():
    problems = []
    assert (
        pod_host_ports({"containers": [{"ports": [{"containerPort": 1, "hostPort": 70000}]}]}, "p", problems)
        == ()
    )
    assert problems
