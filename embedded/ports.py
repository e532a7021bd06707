"""Port pre-check for `metalgate up`: refuse to start when a port it needs is taken."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class PortUse:
    """A port the stack will listen on and the `metalgate up` flag that changes it."""

    port: int
    what: str
    flag: str


class PortTakenError(RuntimeError):
    """One line naming the port, what holds it when known, and the flag to change it."""


def is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves do, so a port in TIME_WAIT is not reported as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def holder(port: int) -> str | None:
    """`name (pid N)` of the process listening on `port`, when this user may see it."""
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return None
                with contextlib.suppress(psutil.Error):
                    return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
                return f"pid {conn.pid}"
    return None


def check_ports(host: str, uses: list[PortUse]) -> None:
    """Raise PortTakenError for the first taken port, or for a port named twice."""
    seen: dict[int, PortUse] = {}
    for use in uses:
        if use.port in seen:
            other = seen[use.port]
            raise PortTakenError(
                f"port {use.port} is asked for both the {other.what} ({other.flag}) and the "
                f"{use.what} ({use.flag}); give one of them another port"
            )
        seen[use.port] = use
        if not is_free(host, use.port):
            held = holder(use.port)
            by = f" by {held}" if held else ""
            raise PortTakenError(
                f"port {use.port} ({use.what}) on {host} is already in use{by}; "
                f"stop it or choose another port with {use.flag} PORT"
            )
