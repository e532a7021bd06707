"""Reading Temporal failures: the innermost named error decides the HTTP answer."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, FailureError
from temporalio.exceptions import TimeoutError as TemporalTimeout


def root_failure(error: BaseException) -> BaseException:
    """Follow the cause chain (workflow -> activity -> application error) to its end."""
    current: BaseException = error
    while isinstance(current, FailureError) and current.cause is not None:
        current = current.cause
    return current


def application_type(error: BaseException) -> str | None:
    """The `type` of the first ApplicationError in the chain, or "Timeout" for a timeout."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ApplicationError) and current.type:
            return current.type
        if isinstance(current, TemporalTimeout):
            return "Timeout"
        current = current.cause if isinstance(current, FailureError) else None
    return None
