"""The two `agent.node_backend.NodeBackend`s: `real` (a kubeadm node) and `simulated`."""
