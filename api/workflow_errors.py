"""Reading Temporal failures: the outermost named error decides the HTTP answer."""

from __future__ import annotations

import logging
from collections import defaultdict

from fastapi import HTTPException
from temporalio.exceptions import ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeout

from domain.phases import Reason

log = logging.getLogger(__name__)

TIMEOUT = "Timeout"

GATEWAY_OFFLINE = (
    "gateway {gateway} is offline: start it with `metalgate gateway run` on its host "
    "(or `metalgate up` for the system gateway), then retry"
)

# The one table from a named workflow failure to its HTTP answer: the status, and the text
# (`{message}` is the failure's own; the other fields come from the route). A failure not
# named here gets the route's default answer.
FAILURE_ANSWERS: dict[str, tuple[int, str]] = {
    Reason.MAAS_AUTH_FAILED.value: (422, "maas_api_key: {message}; copy the key again from MAAS"),
    Reason.MAAS_UNREACHABLE.value: (
        422,
        "maas_url: {message}; check the URL and the gateway's network",
    ),
    Reason.GATEWAY_UNAVAILABLE.value: (503, GATEWAY_OFFLINE),
    TIMEOUT: (503, GATEWAY_OFFLINE),
    Reason.ACTION_REJECTED.value: (409, "{action} refused: {message}"),
}


def named_failure(error: BaseException) -> tuple[str | None, str]:
    """(type, message) of the first typed ApplicationError in the cause chain, or a timeout."""
    current: BaseException | None = error
    innermost = error
    while current is not None:
        if isinstance(current, ApplicationError) and current.type:
            return current.type, current.message
        if isinstance(current, TemporalTimeout):
            return TIMEOUT, str(current)
        innermost = current
        current = getattr(current, "cause", None) or current.__cause__
    return None, str(innermost)


def failure_http_error(
    error: BaseException, default: tuple[int, str], **context: str
) -> HTTPException:
    """The HTTP answer to a workflow failure, from FAILURE_ANSWERS or else `default`."""
    kind, message = named_failure(error)
    status, text = FAILURE_ANSWERS.get(kind or "", default)
    if kind not in FAILURE_ANSWERS:
        log.warning("workflow failure %s: %s", kind or "(unnamed)", message)
    fields: defaultdict[str, str] = defaultdict(str, context, message=message)
    return HTTPException(status, text.format_map(fields))
