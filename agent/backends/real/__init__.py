"""The real node: cloud-init ran kubeadm; the agent reads and drives the real API server.

Nothing in this package imports `agent.backends.simulated`
(tests/foundation/test_import_boundaries.py checks it).
"""
