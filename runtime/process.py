"""Running a long-lived service process to its end."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn


def run_service(main: Coroutine[Any, Any, None]) -> NoReturn:
    """`asyncio.run(main)`, then leave without interpreter finalization.

    The Temporal SDK's Rust runtime and grpc keep native threads that may still call into the
    interpreter while it finalizes (`Fatal Python error: PyGILState_Release`). Once `main`
    has shut the worker down there is nothing left worth finalizing, so exit at once.
    """
    code = 0
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        logging.getLogger(__name__).exception("service stopped on an error")
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
