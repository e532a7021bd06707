"""Errors with the status and body MAAS answers for them."""

from __future__ import annotations


class MaasError(Exception):
    """An error answered as `status` with a text/plain body, or JSON when `body` is a dict."""

    status = 500

    def __init__(self, body: str | dict[str, list[str]]) -> None:
        super().__init__(body)
        self.body = body


class BadRequest(MaasError):
    status = 400


class Unauthorized(MaasError):
    status = 401


class Forbidden(MaasError):
    status = 403


class NotFound(MaasError):
    status = 404


class MethodNotAllowed(MaasError):
    status = 405


class Conflict(MaasError):
    status = 409


class ServiceUnavailable(MaasError):
    status = 503
