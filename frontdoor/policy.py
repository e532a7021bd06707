"""What a gateway may ask of Temporal through the front door, call by call.

Only what a worker of its own queue needs: poll activity tasks of `gateway.<its id>`, answer
and heartbeat the tasks it was handed, and the calls the SDK makes at worker start and
shutdown. Any call not named here is refused, so a new Temporal API is closed by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from domain.naming import gateway_queue
from frontdoor.credentials import GatewayCaller
from frontdoor.tokens import TaskTokenSealer, TokenRefused


class Refused(Exception):
    """The call is outside what this gateway may do; the message says why."""


Check = Callable[[GatewayCaller, Any], None]
Answer = Callable[[GatewayCaller, Any], None]


@dataclass(frozen=True)
class Rule:
    request: type[Any]
    response: type[Any]
    check: Check
    answer: Answer | None = None


class Policy:
    def __init__(self, namespace: str, sealer: TaskTokenSealer) -> None:
        self.namespace = namespace
        self.sealer = sealer
        self.rules: dict[str, Rule] = {
            "GetSystemInfo": self._rule("GetSystemInfo", _anyone),
            "DescribeNamespace": self._rule("DescribeNamespace", self._describe_namespace),
            "PollActivityTaskQueue": self._rule(
                "PollActivityTaskQueue", self._own_queue_poll, answer=self._wrap_token
            ),
            "RecordActivityTaskHeartbeat": self._rule(
                "RecordActivityTaskHeartbeat", self._own_token
            ),
            "RespondActivityTaskCompleted": self._rule(
                "RespondActivityTaskCompleted", self._own_token
            ),
            "RespondActivityTaskFailed": self._rule("RespondActivityTaskFailed", self._own_token),
            "RespondActivityTaskCanceled": self._rule(
                "RespondActivityTaskCanceled", self._own_token
            ),
            "ShutdownWorker": self._rule("ShutdownWorker", self._own_shutdown),
        }

    @staticmethod
    def _rule(method: str, check: Check, answer: Answer | None = None) -> Rule:
        return Rule(
            getattr(wsv1, f"{method}Request"), getattr(wsv1, f"{method}Response"), check, answer
        )

    def _namespace(self, requested: str) -> None:
        if requested != self.namespace:
            raise Refused(f"namespace {requested!r}: gateways work in {self.namespace!r} only")

    def _describe_namespace(self, caller: GatewayCaller, request: Any) -> None:
        if request.id:
            raise Refused("describe a namespace by name, not by id")
        self._namespace(request.namespace)

    def _own_queue_poll(self, caller: GatewayCaller, request: Any) -> None:
        self._namespace(request.namespace)
        own = gateway_queue(caller.gateway_id)
        if request.task_queue.name != own:
            raise Refused(
                f"task queue {request.task_queue.name!r}: gateway {caller.gateway_id} "
                f"may poll {own!r} only"
            )

    def _wrap_token(self, caller: GatewayCaller, response: Any) -> None:
        if response.task_token:
            response.task_token = self.sealer.wrap(caller.gateway_id, response.task_token)

    def _own_token(self, caller: GatewayCaller, request: Any) -> None:
        self._namespace(request.namespace)
        try:
            request.task_token = self.sealer.unwrap(caller.gateway_id, request.task_token)
        except TokenRefused as refused:
            raise Refused(f"task token: {refused}") from None

    def _own_shutdown(self, caller: GatewayCaller, request: Any) -> None:
        self._namespace(request.namespace)
        if request.sticky_task_queue:
            raise Refused("a gateway runs no workflows, so it has no sticky queue to shut down")
        if request.task_queue and request.task_queue != gateway_queue(caller.gateway_id):
            raise Refused(f"task queue {request.task_queue!r} is not this gateway's")


def _anyone(caller: GatewayCaller, request: Any) -> None:
    """Server and cluster facts the SDK reads at connect; they carry no tenant data."""
