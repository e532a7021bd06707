"""JSON logs: one object per line, with the cluster and workflow ids where they are known."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from typing import Any

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from runtime.logs import JsonFormatter, configure_logging


def capture() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test-json-{id(out)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_line_logged_in_an_activity_names_its_workflow_and_cluster() -> None:
    logger, out = capture()

    @activity.defn(name="AcquireMachines")
    async def acquire() -> None:
        logger.info("allocated %d machines", 2)

    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id="cluster/cl-123/create",
        workflow_run_id="r1",
        activity_type="AcquireMachines",
    )
    await env.run(acquire)
    [line] = lines(out)
    assert line["message"] == "allocated 2 machines"
    assert line["level"] == "INFO"
    assert line["workflow_id"] == "cluster/cl-123/create"
    assert line["cluster_id"] == "cl-123"
    assert line["activity"] == "AcquireMachines"
    assert line["ts"].endswith("+00:00")


def test_ids_given_as_extra_are_fields_and_errors_carry_the_traceback() -> None:
    logger, out = capture()
    logger.warning("signal failed", extra={"cluster_id": "cl-9"})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("broke")
    first, second = lines(out)
    assert first["cluster_id"] == "cl-9"
    assert "workflow_id" not in first
    assert "ValueError: boom" in second["exception"]


def test_the_setting_chooses_the_format(capsys: Any) -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = []
        configure_logging(log_format="json")
        logging.getLogger("metalgate.test").warning("hello")
        assert json.loads(capsys.readouterr().err.splitlines()[-1])["message"] == "hello"
    finally:
        root.handlers = saved
