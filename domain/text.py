"""Bounded text without control characters: every string that reaches the store, a workflow
or a node is one of these, so a newline can never become a line of a node's config."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

HOSTNAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
MAX_HOSTNAME = 253
MAX_MESSAGE = 2000


def no_control_characters(value: str) -> str:
    """`value` unchanged, or a ValueError that names the character and the fix."""
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"contains the control character {found.group()!r} at position {found.start()}; "
            "remove it (newlines, tabs and other control characters are not allowed)"
        )
    return value


Hostname = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_HOSTNAME,
        pattern=HOSTNAME_PATTERN,
        description="a DNS name: letters, digits, '-' and '.'",
    ),
]
# Free text from agents and gateways, shown to people.
# A hostname where none may be given (e.g. a command result about the whole cluster).
OptionalHostname = Annotated[
    str, Field(max_length=MAX_HOSTNAME, pattern=f"^({HOSTNAME_PATTERN[1:-1]})?$")
]
Message = Annotated[str, Field(max_length=MAX_MESSAGE), AfterValidator(no_control_characters)]
# Short identifiers and versions of software we do not control (a gateway's build).
Label = Annotated[str, Field(max_length=128), AfterValidator(no_control_characters)]
