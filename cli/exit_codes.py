"""Exit codes of the user CLI: a stable contract for scripts.

| code | meaning |
| --- | --- |
| 0 | the command did what was asked (with `--wait`: the cluster reached its goal) |
| 1 | the operation failed: the cluster ended `Failed`, or the API answered 5xx |
| 2 | usage or validation error: bad flags, an invalid spec, or a 4xx such as 409/422 |
| 3 | not found: the object does not exist or belongs to another project (404) |
| 4 | the API is unreachable (connection refused, DNS, TLS, timeout) |
| 5 | authentication or authorisation failed (401/403), or no API key is configured |
| 6 | `--wait` gave up before the cluster reached a terminal phase; it keeps going |
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    UNREACHABLE = 4
    AUTH = 5
    WAIT_TIMEOUT = 6


def for_status(status: int) -> ExitCode:
    """The exit code for an HTTP error status from the API."""
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if 400 <= status < 500:
        return ExitCode.USAGE
    return ExitCode.FAILED
