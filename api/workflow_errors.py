"""Reading Temporal failures: the outermost named error decides the HTTP answer."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeout

TIMEOUT = "Timeout"


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
