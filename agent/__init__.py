"""The cluster agent: runs on every node MAAS deployed and phones home to the control plane.

It imports only `domain` wire models and talks to the control plane only over HTTP.
Entry points: `Agent` (one node), `agent.runtime.build_runtime_app` (boot-hook host for many
nodes in one process), `agent.fleet.Fleet` (thousands of lightweight agents for benchmarks).
"""
