"""One table answers every route's workflow failures."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from api.workflow_errors import failure_http_error
from domain.phases import Reason

DEFAULT = (418, "default: {message}")


def test_a_named_failure_gets_its_status_and_fix() -> None:
    answer = failure_http_error(
        ApplicationError("key refused", type=Reason.MAAS_AUTH_FAILED.value), DEFAULT
    )
    assert (answer.status_code, answer.detail) == (
        422,
        "maas_api_key: key refused; copy the key again from MAAS",
    )


def test_the_route_fills_in_what_it_knows() -> None:
    gateway = failure_http_error(
        ApplicationError("gone", type=Reason.GATEWAY_UNAVAILABLE.value), DEFAULT, gateway="pcg-a"
    )
    assert gateway.status_code == 503
    assert str(gateway.detail).startswith("gateway pcg-a is offline")
    refused = failure_http_error(
        ApplicationError("pool x is unknown", type=Reason.ACTION_REJECTED.value),
        DEFAULT,
        action="scale",
    )
    assert (refused.status_code, refused.detail) == (409, "scale refused: pool x is unknown")


def test_an_unnamed_failure_gets_the_route_default() -> None:
    answer = failure_http_error(ApplicationError("odd", type="SomethingElse"), DEFAULT)
    assert (answer.status_code, answer.detail) == (418, "default: odd")
