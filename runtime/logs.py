"""One log format for every metalgate process; chatty client libraries only warn.

`METALGATE_LOG_FORMAT=json` writes one JSON object per line, with the cluster and workflow
ids as fields wherever they are known: given as `extra=`, from the Temporal logger's
context, or from the activity or workflow the line is logged in.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

QUIET_LOGGERS = ("httpx", "httpcore", "aiohttp.access")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields a caller may pass with `extra=` that the JSON line carries as they are.
EXTRA_FIELDS = ("cluster_id", "workflow_id", "run_id", "gateway_id", "activity", "request_id")


def cluster_of_workflow(workflow_id: str | None) -> str | None:
    """The cluster of a lifecycle workflow id (`cluster/<id>/create`, domain/naming.py)."""
    if workflow_id and workflow_id.startswith("cluster/"):
        return workflow_id.split("/", 2)[1]
    return None


def _temporal_context(record: logging.LogRecord) -> dict[str, Any]:
    """Workflow and activity ids from the Temporal SDK's `extra`, or from the running one."""
    found: dict[str, Any] = {}
    for key in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, key, None)
        if isinstance(details, dict):
            found["workflow_id"] = details.get("workflow_id")
            found["run_id"] = details.get("run_id") or details.get("workflow_run_id")
            if "activity_type" in details:
                found["activity"] = details["activity_type"]
    if "workflow_id" not in found:
        from temporalio import activity

        if activity.in_activity():
            info = activity.info()
            found.update(
                workflow_id=info.workflow_id,
                run_id=info.workflow_run_id,
                activity=info.activity_type,
            )
    return {k: v for k, v in found.items() if v}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_temporal_context(record))
        line.update({k: getattr(record, k) for k in EXTRA_FIELDS if getattr(record, k, None)})
        cluster = cluster_of_workflow(line.get("workflow_id"))
        if cluster and "cluster_id" not in line:
            line["cluster_id"] = cluster
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str | int = logging.INFO, log_format: str | None = None) -> None:
    """Text lines, or JSON lines when `log_format` (default: METALGATE_LOG_FORMAT) is json."""
    if log_format is None:
        # Read before the settings object (Settings.log_format documents it): logging must
        # work when the settings fail validation, so that failure itself is logged. The agent
        # on a node has no control-plane settings at all.
        log_format = os.environ.get("METALGATE_LOG_FORMAT", "text").lower()
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level, handlers=[handler]
    )
    # A request line per heartbeat or poll would bury what matters.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
