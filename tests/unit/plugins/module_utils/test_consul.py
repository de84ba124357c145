# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The pure side of the Consul module_utils: addresses, validation, planning, results. No server."""

from __future__ import annotations

import re

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import consul as c

NODES = [
    {"Node": "consul-server", "Address": "127.0.0.1"},
    {"Node": "web-1", "Address": "10.0.1.5"},
    {"Node": "web-2", "Address": "10.0.1.6"},
]
SERVICES = {
    "web": {"ID": "web", "Service": "web"},
    "web-sidecar-proxy": {"ID": "web-sidecar-proxy", "Service": "web-sidecar-proxy"},
    "api-1": {"ID": "api-1", "Service": "api"},
    "consul": {"ID": "consul", "Service": "consul"},
}


def options(**overrides):
    args = {
        "mode": "auto",
        "maintenance": True,
        "reason": "r",
        "services": None,
        "agent_port": 8500,
        "timeout": 5,
        "deadline": 90,
        "concurrency": 20,
    }
    args.update(overrides)
    return c.validate_options(**args)


# -- addresses -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8600", c.Endpoint("http", "127.0.0.1", 8600)),
        ("https://consul.internal:8501", c.Endpoint("https", "consul.internal", 8501)),
        ("[fd00::1]:8500", c.Endpoint("http", "fd00::1", 8500)),
        ("consul.internal", c.Endpoint("http", "consul.internal", 8500)),
    ],
)
def test_parse_address(value, expected):
    assert c.parse_address(value, "x", "http", 8500) == expected


@pytest.mark.parametrize("value", ["", "ftp://h:1", "h:99999", "h:port", "http://h:1/v1", "user@h:1"])
def test_parse_address_refuses_naming_the_field(value):
    with pytest.raises(c.ConsulValidationError, match=re.escape(f"agent_addresses['n']: {value!r} is not allowed")):
        c.parse_address(value, "agent_addresses['n']", "http", 8500)


def test_agent_address_needs_a_port():
    with pytest.raises(c.ConsulValidationError, match="use host:port"):
        c.validate_agent_addresses({"web-1": "127.0.0.1"}, "http")
    assert c.validate_agent_addresses({"web-1": "127.0.0.1:9"}, "https") == {
        "web-1": c.Endpoint("https", "127.0.0.1", 9)
    }


def test_endpoint_url_and_netloc():
    assert c.Endpoint("https", "fd00::1", 8501).url("/v1/agent/maintenance", {"reason": "a b", "enable": "true"}) == (
        "https://[fd00::1]:8501/v1/agent/maintenance?enable=true&reason=a+b"
    )
    assert c.Endpoint("http", "h", 1).netloc == "h:1"


def test_catalog_endpoint_precedence():
    assert c.catalog_endpoint(None, None, None, None) == c.Endpoint("http", "localhost", 8500)
    from_env = c.catalog_endpoint(None, None, None, "https://consul.internal:8501")
    assert from_env == c.Endpoint("https", "consul.internal", 8501)
    assert c.catalog_endpoint("other", None, None, "127.0.0.1:9500") == c.Endpoint("http", "other", 9500)
    assert c.catalog_endpoint(None, 1234, "https", "127.0.0.1:9500") == c.Endpoint("https", "127.0.0.1", 1234)
    with pytest.raises(c.ConsulValidationError, match="CONSUL_HTTP_ADDR: 'ftp://x' is not allowed"):
        c.catalog_endpoint(None, None, None, "ftp://x")
    with pytest.raises(c.ConsulValidationError, match="port: 0 is not allowed"):
        c.catalog_endpoint(None, 0, None, None)


# -- validation ------------------------------------------------------------------------------------
def test_validate_instances_normalises():
    found = c.validate_instances(
        [{"instance_id": "i-1", "private_ip": " 10.0.1.5 "}, {"instance_id": "i-2", "private_ip": "fd00::0:1"}]
    )
    assert found == [c.Instance("i-1", "10.0.1.5"), c.Instance("i-2", "fd00::1")]


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([{"instance_id": "", "private_ip": "10.0.0.1"}], "instances[0].instance_id: '' is not allowed"),
        ([{"instance_id": "i-1", "private_ip": "10.0.0"}], "instances[0].private_ip: '10.0.0' is not allowed"),
        (
            [{"instance_id": "i-1", "private_ip": "10.0.0.1", "agent_port": 70000}],
            "instances[0].agent_port: 70000 is not allowed; use a TCP port between 1 and 65535",
        ),
        (
            [{"instance_id": "i-1", "private_ip": "10.0.0.1"}, {"instance_id": "i-1", "private_ip": "10.0.0.2"}],
            "instances[1].instance_id: 'i-1' is not allowed; it is already instances[0]",
        ),
        (
            [{"instance_id": "i-1", "private_ip": "10.0.0.1"}, {"instance_id": "i-2", "private_ip": "10.0.0.1"}],
            "instances[1].private_ip: '10.0.0.1' is not allowed; it is already the address of 'i-1'",
        ),
    ],
)
def test_validate_instances_names_the_field(instances, message):
    with pytest.raises(c.ConsulValidationError, match=re.escape(message)):
        c.validate_instances(instances)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "dns"}, "mode: 'dns' is not allowed; use one of auto, agent, catalog"),
        ({"agent_port": 0}, "agent_port: 0 is not allowed"),
        ({"timeout": 0}, "timeout: 0 is not allowed; use a number of seconds > 0"),
        ({"deadline": -1}, "deadline: -1 is not allowed"),
        ({"concurrency": 0}, "concurrency: 0 is not allowed; use a number of parallel nodes between 1 and 256"),
        ({"concurrency": 257}, "concurrency: 257 is not allowed"),
        ({"services": []}, "services: [] is not allowed"),
        ({"services": ["web", " "]}, "services: ['web', ' '] is not allowed"),
    ],
)
def test_validate_options_names_the_field(overrides, message):
    with pytest.raises(c.ConsulValidationError, match=re.escape(message)):
        options(**overrides)


def test_validate_options_deduplicates_services():
    assert options(services=["web", "api", "web"]).services == ("api", "web")
    assert options().services is None


# -- planning --------------------------------------------------------------------------------------
def test_plan_jobs_matches_by_address_and_picks_the_agent():
    instances = [
        c.Instance("i-1", "10.0.1.5"),
        c.Instance("i-2", "10.0.1.6", agent_port=8600),
        c.Instance("i-3", "10.0.1.7"),
        c.Instance("i-4", "127.0.0.1"),
    ]
    overrides = {"i-4": c.Endpoint("http", "127.0.0.1", 7000), "web-1": c.Endpoint("http", "127.0.0.1", 7001)}
    jobs = c.plan_jobs(instances, NODES, overrides, 8500, "https")
    assert [(job.node, job.agent, job.error) for job in jobs] == [
        ("web-1", c.Endpoint("http", "127.0.0.1", 7001), None),  # by node name
        ("web-2", c.Endpoint("https", "10.0.1.6", 8600), None),  # the instance's own agent port
        (None, None, None),  # no node: reported, not an error
        ("consul-server", c.Endpoint("http", "127.0.0.1", 7000), None),  # by instance id
    ]


def test_plan_jobs_refuses_an_address_shared_by_two_nodes():
    nodes = [*NODES, {"Node": "old-web-1", "Address": "10.0.1.5"}]
    (job,) = c.plan_jobs([c.Instance("i-1", "10.0.1.5")], nodes, {}, 8500, "http")
    assert job.node is None
    assert job.error == (
        "private_ip 10.0.1.5 is the address of several Consul nodes (old-web-1, web-1); deregister the stale node first"
    )


def test_select_services_defaults_to_all_but_consul():
    assert c.select_services(SERVICES, None) == ["api-1", "web", "web-sidecar-proxy"]
    assert c.select_services(SERVICES, ("api", "web")) == ["api-1", "web"]  # by name or id
    assert c.select_services(SERVICES, ("consul",)) == ["consul"]  # only when asked for
    assert c.select_services({}, None) == []


def test_plan_agent_enables_maintenance_once():
    plan = c.plan_agent(SERVICES, {"serfHealth": {}}, None, True)
    assert plan == c.Plan(True, ("api-1", "web", "web-sidecar-proxy"))
    assert plan.changes
    done = c.plan_agent({}, {c.NODE_MAINTENANCE_CHECK: {}}, None, True)
    assert done == c.Plan(False, ())
    assert not done.changes
    assert c.plan_agent({}, {}, None, False) == c.Plan(False, ())


def test_plan_catalog_never_sets_maintenance():
    assert c.plan_catalog(SERVICES, ("web",)) == c.Plan(False, ("web",))


def test_agent_alive_reads_serf_health():
    assert c.agent_alive([{"CheckID": "serfHealth", "Status": "passing"}])
    assert not c.agent_alive([{"CheckID": "serfHealth", "Status": "critical"}])
    assert not c.agent_alive([])


# -- results ---------------------------------------------------------------------------------------
def outcome(node="web-1", **kwargs):
    job = c.Job(c.Instance("i-1", "10.0.1.5"), node, c.Endpoint("http", "127.0.0.1", 7001) if node else None)
    return c.Outcome(job, **kwargs)


def test_outcome_describes_changes():
    done = outcome(mode="agent", before=["a", "b"], deregistered=["a"], maintenance_after=True)
    assert done.describe() == {
        "instance_id": "i-1",
        "private_ip": "10.0.1.5",
        "node": "web-1",
        "agent_address": "127.0.0.1:7001",
        "mode": "agent",
        "services": ["a"],
        "maintenance": True,
        "changed": True,
        "error": None,
    }
    settled = outcome(mode="agent", maintenance_before=True, maintenance_after=True)
    assert settled.changed is False
    assert outcome(mode="catalog").describe()["agent_address"] is None


def test_diff_per_node():
    outcomes = [
        outcome(mode="agent", before=["a", "b"], deregistered=["a"], maintenance_after=True),
        outcome(node=None),
    ]
    assert c.diff(outcomes) == {
        "before": {"web-1": {"services": ["a", "b"], "maintenance": False}},
        "after": {"web-1": {"services": ["b"], "maintenance": True}},
    }


def test_failure_message_names_instances_and_errors():
    assert c.failure_message([outcome()]) is None
    error = c.ConsulError("PUT", "http://127.0.0.1:7001/v1/agent/maintenance", 403, "Permission denied\n")
    message = c.failure_message([outcome(error=str(error)), outcome(node=None)])
    assert message == (
        "Consul deregistration failed for 1 of 2 instances: i-1 (web-1): "
        "PUT http://127.0.0.1:7001/v1/agent/maintenance answered HTTP 403: Permission denied"
    )


def test_unreachable_error():
    error = c.ConsulError("GET", "http://10.0.0.1:8500/v1/agent/self", None, "cannot connect: refused")
    assert error.unreachable
    assert str(error) == "GET http://10.0.0.1:8500/v1/agent/self failed: cannot connect: refused"


def test_clock_caps_timeouts_by_the_deadline():
    now = [100.0]
    clock = c.Clock(10, now=lambda: now[0])
    assert clock.timeout(5) == 5
    now[0] = 107.5
    assert clock.timeout(5) == 2.5
    now[0] = 110.0
    with pytest.raises(c.DeadlineExceeded, match="the 10 seconds allowed"):
        clock.timeout(5)
