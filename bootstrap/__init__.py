"""Per-cluster kubeadm bootstrap material and the per-node cloud-init built from it."""
