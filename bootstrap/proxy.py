"""The gateway's proxy, carried to apt, containerd, kubelet and the agent on each node."""

from __future__ import annotations

from domain.gateway import ProxySettings

# What must never go through the proxy, whatever the gateway's list says.
ALWAYS_DIRECT = ["localhost", "127.0.0.1", "::1", ".svc", ".cluster.local"]


def no_proxy_list(proxy: ProxySettings, *extra: str) -> list[str]:
    """The gateway's list plus the cluster's own networks and addresses, without repeats."""
    merged: list[str] = []
    for entry in [*proxy.no_proxy, *ALWAYS_DIRECT, *extra]:
        if entry and entry not in merged:
            merged.append(entry)
    return merged


def _pairs(proxy: ProxySettings, no_proxy: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in (("HTTP_PROXY", proxy.http_proxy), ("HTTPS_PROXY", proxy.https_proxy)):
        if value:
            pairs += [(name, value), (name.lower(), value)]
    joined = ",".join(no_proxy)
    return [*pairs, ("NO_PROXY", joined), ("no_proxy", joined)]


def environment_file(proxy: ProxySettings, no_proxy: list[str]) -> str:
    """KEY="value" lines: read by systemd's EnvironmentFile= and by `set -a; . file`."""
    return "".join(f'{k}="{v}"\n' for k, v in _pairs(proxy, no_proxy))


def systemd_drop_in(proxy: ProxySettings, no_proxy: list[str]) -> str:
    assignments = " ".join(f'"{k}={v}"' for k, v in _pairs(proxy, no_proxy))
    return f"[Service]\nEnvironment={assignments}\n"


def apt_config(proxy: ProxySettings) -> str:
    lines = []
    if proxy.http_proxy:
        lines.append(f'Acquire::http::Proxy "{proxy.http_proxy}";')
    if proxy.https_proxy:
        lines.append(f'Acquire::https::Proxy "{proxy.https_proxy}";')
    return "\n".join(lines) + "\n"
