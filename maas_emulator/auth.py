"""OAuth 1.0 PLAINTEXT, the way MAAS checks API keys, plus the admin check for `/_emulator/`."""

from __future__ import annotations

import secrets
import string
from urllib.parse import unquote

from aiohttp import web

from maas_emulator.errors import Forbidden, Unauthorized
from maas_emulator.models import User
from maas_emulator.state import State

WWW_AUTHENTICATE = 'OAuth realm="OAuth"'
_ALPHABET = string.ascii_letters + string.digits


def new_user(username: str, *, is_admin: bool, api_key: str | None = None) -> User:
    """A user with the given key, or a fresh one shaped like MAAS's (18:18:32 characters)."""
    if api_key is None:
        consumer, token, secret = (_random(n) for n in (18, 18, 32))
    else:
        parts = api_key.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError("an API key is consumer_key:token_key:token_secret")
        consumer, token, secret = parts
    return User(
        username=username,
        email=f"{username}@example.com",
        is_admin=is_admin,
        consumer_key=consumer,
        token_key=token,
        token_secret=secret,
    )


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def authenticate(request: web.Request, state: State) -> User:
    """The user whose key signed the request; 401 like MAAS otherwise."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("OAuth "):
        raise Unauthorized("Authorization Error: 'No OAuth credentials'")
    fields = _oauth_fields(header[len("OAuth ") :])
    token = fields.get("oauth_token", "")
    user = state.user_for_token(token)
    if user is None or user.consumer_key != fields.get("oauth_consumer_key"):
        raise Unauthorized(f"Authorization Error: 'Invalid access token: {token}'")
    if fields.get("oauth_signature_method") != "PLAINTEXT":
        raise Unauthorized("Authorization Error: 'Unsupported signature method'")
    # PLAINTEXT signs with "consumer_secret&token_secret"; MAAS consumer secrets are empty.
    if fields.get("oauth_signature") != f"&{user.token_secret}":
        raise Unauthorized("Authorization Error: 'Invalid signature'")
    return user


def authenticate_admin(request: web.Request, state: State) -> User:
    """Admin endpoints take `Authorization: Bearer <admin API key>` or an admin's OAuth header."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        consumer, _, rest = header[len("Bearer ") :].strip().partition(":")
        token, _, secret = rest.partition(":")
        user = state.user_for_token(token)
        if user is None or (user.consumer_key, user.token_secret) != (consumer, secret):
            raise Unauthorized("Invalid API key.")
    else:
        user = authenticate(request, state)
    if not user.is_admin:
        raise Forbidden("The emulator's admin endpoints need an admin API key.")
    return user


def _oauth_fields(text: str) -> dict[str, str]:
    fields = {}
    for item in text.split(","):
        key, _, value = item.strip().partition("=")
        fields[key] = unquote(value.strip().strip('"'))
    return fields
