"""One log format for every metalgate process; chatty client libraries only warn."""

from __future__ import annotations

import logging

QUIET_LOGGERS = ("httpx", "httpcore", "aiohttp.access")


def configure_logging(level: str | int = logging.INFO) -> None:
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A request line per heartbeat or poll would bury what matters.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
