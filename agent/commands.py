"""What a control-plane node does with a command, with progress: upgrade; repave (drain a
node and take it out before its machine is released or redeployed); a remediation's take-out
of a dead node; cordon, drain, uncordon. The API hands each command to the node it names as
its runner, or else to the first control-plane machine the cluster records.

Exactly once across restarts: each finished step is saved in the agent's state before the
next starts, so a restarted agent resumes after the last finished step, and a finished
command is only reported again (with the same Idempotency-Key), never run again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from functools import partial

from agent.node_backend import NodeBackend, NodeState
from agent.state import CommandRecord, StateStore
from agent.versions import parse_version
from domain.agent_wire import NODE_ACTIONS, ActionKind, AgentCommand, CommandResult, CommandState

log = logging.getLogger(__name__)

RUNNING = CommandState.RUNNING
SUCCEEDED = CommandState.SUCCEEDED
FAILED = CommandState.FAILED

# The API's bound on a result message; longer tool output is cut (its end says why).
MAX_MESSAGE = 1500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Per node, in kubeadm's order; each is saved once done.
UPGRADE_STEPS = ("kubeadm", "drain", "kubelet", "uncordon")

Post = Callable[[CommandResult], None]


class _Steps:
    """The persisted progress of one command."""

    def __init__(self, store: StateStore, command_id: str, record: CommandRecord) -> None:
        self._store = store
        self._command_id = command_id
        self._record = record

    async def once(self, step: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` unless an earlier run of this agent finished it, then record it."""
        if step in self._record.done_steps:
            log.info("command %s: step %s already done", self._command_id, step)
            return
        await action()
        self._record.done_steps.append(step)
        await self._store.save()

    def finished(self, names: list[str]) -> bool:
        return all(name in self._record.done_steps for name in names)

    def started(self, node: str) -> bool:
        return any(step.startswith(f"{node}:") for step in self._record.done_steps)


async def execute(
    command: AgentCommand, backend: NodeBackend, store: StateStore, post: Post
) -> None:
    """Run one command to its end (or report its earlier end); every outcome is posted."""
    record = store.state.commands.get(command.id)
    if record is not None and record.final is not None:
        log.info("command %s finished before a restart; reporting it again", command.id)
        post(record.final)
        return
    if record is None:
        record = store.state.commands[command.id] = CommandRecord(kind=command.kind)
        await store.save()
    steps = _Steps(store, command.id, record)
    try:
        if command.kind == ActionKind.UPGRADE:
            final = await _upgrade(command, backend, steps, post)
        elif command.kind == ActionKind.REPAVE:
            final = await _repave(command, backend, steps, post)
        elif command.kind == ActionKind.REMEDIATE:
            final = await _take_out(command, backend, steps, post)
        elif command.kind in NODE_ACTIONS:
            final = await _node_action(ActionKind(command.kind), command, backend, steps, post)
        else:
            final = CommandResult(state=FAILED, message=f"unknown command kind {command.kind!r}")
    except asyncio.CancelledError:
        raise
    except Exception as error:
        log.exception("command %s (%s) failed", command.id, command.kind)
        final = CommandResult(state=FAILED, message=one_line(f"agent error: {error}"))
    record.status = "finished"
    record.final = final
    await store.save()
    post(final)


async def _upgrade(
    command: AgentCommand, backend: NodeBackend, steps: _Steps, post: Post
) -> CommandResult:
    version = command.args.get("kubernetes_version", "")
    nodes = await backend.nodes()
    current = max((n.kubelet_version for n in nodes), key=_version_key, default="")
    try:
        target = parse_version(version)
        if current and target < parse_version(current):
            return CommandResult(
                state=FAILED, message=f"kubeadm cannot downgrade from {current} to {version}"
            )
    except ValueError as error:
        return CommandResult(state=FAILED, message=one_line(str(error)))
    for index, node in enumerate(nodes, start=1):
        node_steps = [f"{node.name}:{step}" for step in UPGRADE_STEPS]
        if steps.finished(node_steps):
            continue  # upgraded by this command before the agent restarted
        if _upgraded(node, version) and not steps.started(node.name):
            continue  # already there: a lost state file, or an upgrade to the same version
        post(
            CommandResult(
                state=RUNNING,
                node=node.name,
                progress=f"{index}/{len(nodes)}",
                message=f"upgrading {node.name} to {version}",
            )
        )
        kubeadm = partial(backend.upgrade_kubeadm, node.name, version, first=index == 1)
        await steps.once(f"{node.name}:kubeadm", kubeadm)
        await steps.once(f"{node.name}:drain", partial(backend.drain, node.name))
        await steps.once(
            f"{node.name}:kubelet", partial(backend.upgrade_kubelet, node.name, version)
        )
        await steps.once(f"{node.name}:uncordon", partial(backend.uncordon, node.name))
    return CommandResult(
        state=SUCCEEDED,
        progress=f"{len(nodes)}/{len(nodes)}",
        message=f"{len(nodes)} nodes at {version}",
    )


async def _repave(
    command: AgentCommand, backend: NodeBackend, steps: _Steps, post: Post
) -> CommandResult:
    name = command.args.get("node", "")
    node = await backend.find_node(name)
    if node is None:
        return CommandResult(state=FAILED, node=name, message=f"no node {name!r} in cluster")
    post(
        CommandResult(
            state=RUNNING, node=node.name, progress="0/1", message="draining, then taking it out"
        )
    )
    await steps.once(f"{node.name}:repave", partial(backend.repave, node.name))
    return CommandResult(
        state=SUCCEEDED, node=node.name, progress="1/1", message="drained and taken out"
    )


# What each node action did, for its result message.
_DONE = {
    ActionKind.CORDON: "cordoned",
    ActionKind.DRAIN: "drained",
    ActionKind.UNCORDON: "uncordoned",
}


async def _node_action(
    kind: ActionKind, command: AgentCommand, backend: NodeBackend, steps: _Steps, post: Post
) -> CommandResult:
    """Cordon, drain or uncordon one node (found by hostname or system id)."""
    name = command.args.get("node", "")
    node = await backend.find_node(name)
    if node is None:
        return CommandResult(state=FAILED, node=name, message=f"no node {name!r} in cluster")
    run = {
        ActionKind.CORDON: backend.cordon,
        ActionKind.DRAIN: backend.drain,
        ActionKind.UNCORDON: backend.uncordon,
    }[kind]
    post(CommandResult(state=RUNNING, node=node.name, progress="0/1", message=f"{kind} running"))
    await steps.once(f"{node.name}:{kind}", partial(run, node.name))
    return CommandResult(
        state=SUCCEEDED, node=node.name, progress="1/1", message=f"{node.name} {_DONE[kind]}"
    )


async def _take_out(
    command: AgentCommand, backend: NodeBackend, steps: _Steps, post: Post
) -> CommandResult:
    """A node remediation replaces or redeploys: its etcd member (control plane) and its Node
    go, so etcd counts only members that answer and the machine can join again."""
    name = command.args.get("node", "")
    if not name:
        return CommandResult(state=FAILED, message="remediate needs args.node")
    post(CommandResult(state=RUNNING, node=name, progress="0/1", message="taking the node out"))
    removed = []
    if command.args.get("etcd_member") == "true":
        await steps.once(f"{name}:etcd-member", partial(backend.remove_etcd_member, name))
        removed.append("etcd member")
    await steps.once(f"{name}:node", partial(backend.delete_node, name))
    removed.append("Node")
    return CommandResult(
        state=SUCCEEDED, node=name, progress="1/1", message=f"{' and '.join(removed)} removed"
    )


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """A tool's output as the API takes a message: no control characters, bounded, keeping
    the start (which step) and the end (why it failed)."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    if len(flat) <= limit:
        return flat
    half = (limit - 5) // 2
    return f"{flat[:half]} ... {flat[-half:]}"


def _version_key(version: str) -> tuple[int, int, int]:
    try:
        return parse_version(version)
    except ValueError:
        return (0, 0, 0)


def _upgraded(node: NodeState, version: str) -> bool:
    return node.kubelet_version == version and node.ready and node.schedulable
