"""The cluster agent: runs on every node MAAS deployed and phones home to the control plane.

It imports only `domain` wire models and talks to the control plane only over HTTP.
What it needs from its node is `agent.node_backend.NodeBackend`, with two backends:
`agent.backends.real` (`metalgate agent run` on a real node) and `agent.backends.simulated`
(the emulator's machines, the fleet, demo and bench). Entry points: `Agent` (one node),
`agent.runtime.build_runtime_app` (boot-hook host for many simulated nodes in one process),
`agent.fleet.Fleet` (thousands of lightweight simulated agents for benchmarks).
"""
