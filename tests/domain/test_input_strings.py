"""Strings that reach the store, a workflow or a node: bounded, no control characters; proxies
are URLs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.agent_wire import AgentHeartbeat, AgentStatusReport, CommandResult, NodeReport
from domain.gateway import GatewayHeartbeat, GatewayRegistration, ProxySettings
from workflows.contracts import AgentReport, RepaveRequest, ScaleRequest


@pytest.mark.parametrize(
    "url",
    [
        "http://p:3128\nLD_PRELOAD=/evil.so",
        "http://p:3128 LD_PRELOAD=/evil.so",
        "http://p:3128;reboot",
        "ftp://p:21",
        "p:3128",
        "http://",
        "http://p:99999",
        "http://p:3128/path",
        "http://" + "p" * 3000,
    ],
)
def test_a_proxy_must_be_an_http_url_and_nothing_more(url: str) -> None:
    with pytest.raises(ValidationError, match="http_proxy"):
        ProxySettings(http_proxy=url)
    with pytest.raises(ValidationError, match="https_proxy"):
        ProxySettings(https_proxy=url)


def test_good_proxies_pass() -> None:
    proxy = ProxySettings(
        http_proxy="http://proxy.corp:3128",
        https_proxy="https://user:pw@[fd00::1]:8443/",
        no_proxy=["10.0.0.0/8", ".corp.example", "maas", "fd00::/8", "*"],
    )
    assert proxy.enabled


@pytest.mark.parametrize("entry", ["a b", "x\nLD_PRELOAD=1", "", "a,b", "$(id)"])
def test_no_proxy_entries_are_hosts_domains_or_cidrs(entry: str) -> None:
    with pytest.raises(ValidationError, match="no_proxy"):
        ProxySettings(no_proxy=[entry])


def test_gateway_registration_and_heartbeat_strings_are_bounded() -> None:
    with pytest.raises(ValidationError, match="hostname"):
        GatewayRegistration(token="t", hostname="h" * 400_000, version="1")
    with pytest.raises(ValidationError, match="hostname"):
        GatewayRegistration(token="t", hostname="gw\nx", version="1")
    with pytest.raises(ValidationError, match="version"):
        GatewayRegistration(token="t", hostname="gw", version="1\r\n")
    with pytest.raises(ValidationError, match="version"):
        GatewayHeartbeat(replica_id="r", version="v" * 1000)


def test_agent_wire_strings_are_bounded() -> None:
    with pytest.raises(ValidationError, match="hostname"):
        NodeReport(hostname="n" * 400_000)
    with pytest.raises(ValidationError, match="hostname"):
        NodeReport(hostname="node-1\n")
    with pytest.raises(ValidationError, match="kubelet_version"):
        NodeReport(hostname="n", kubelet_version="v1.30.4\n")
    with pytest.raises(ValidationError, match="message"):
        AgentHeartbeat(node=NodeReport(hostname="n"), message="m" * 5000)
    with pytest.raises(ValidationError, match="kubeconfig"):
        AgentStatusReport(node=NodeReport(hostname="n"), kubeconfig="k" * 400_000)
    with pytest.raises(ValidationError, match="message"):
        CommandResult(state="failed", message="a\x00b")
    with pytest.raises(ValidationError, match="nodes"):
        AgentReport(nodes=[{"hostname": f"n{i}"} for i in range(501)])


def test_action_bodies_are_strict() -> None:
    with pytest.raises(ValidationError, match="count"):
        ScaleRequest.model_validate_json('{"pool": "w", "count": true}')
    with pytest.raises(ValidationError, match="count"):
        ScaleRequest.model_validate_json('{"pool": "w", "count": "3"}')
    with pytest.raises(ValidationError, match="force"):
        RepaveRequest.model_validate_json('{"node": "n1", "force": true}')
    assert ScaleRequest.model_validate_json('{"pool": "w", "count": 3}').count == 3
