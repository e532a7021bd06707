"""The one script every node runs from cloud-init; its per-node values come from NODE_ENV.

It runs each step in a child process (`$0 step NAME`) so `set -e` holds inside every step,
stops at the first failed step, records the outcome in STATUS_PATH and still installs the
agent, so the control plane hears from a node whose bootstrap failed.
"""

from __future__ import annotations

SCRIPT_PATH = "/usr/local/lib/metalgate/bootstrap-node"
NODE_ENV = "/etc/metalgate/node.env"
PROXY_ENV = "/etc/metalgate/proxy.env"
KUBEADM_CONFIG = "/etc/metalgate/kubeadm.yaml"
UPLOAD_CERTS_CONFIG = "/etc/metalgate/upload-certs.yaml"
TOKEN_SEED = "/etc/metalgate/token-seed"
TOKEN_PROGRAM = "/usr/local/lib/metalgate/bootstrap-tokens.py"
UPKEEP_TIMER = "metalgate-control-plane-upkeep.timer"
KUBE_VIP_TEMPLATE = "/etc/metalgate/kube-vip.yaml"
STATUS_PATH = "/var/lib/metalgate/bootstrap-status"
ERROR_PATH = "/run/metalgate-bootstrap-error"
AGENT_VENV = "/opt/metalgate/venv"

SCRIPT = r"""#!/bin/bash
# metalgate node bootstrap. Output goes to /var/log/cloud-init-output.log; the outcome to
# __STATUS__ ("ok" or "failed: <step>: <why>"). Re-run by hand: __SCRIPT__
set -euo pipefail
. __NODE_ENV__
if [ -f __PROXY_ENV__ ]; then set -a; . __PROXY_ENV__; set +a; fi
export DEBIAN_FRONTEND=noninteractive

log() { echo "metalgate-bootstrap: $*"; }
die() { log "ERROR: $*" >&2; echo "$*" > __ERROR__; exit 1; }

prepare_node() {
  swapoff -a
  sed -ri '/\sswap\s/ s/^([^#])/#\1/' /etc/fstab
  modprobe overlay
  modprobe br_netfilter
  sysctl --system > /dev/null
}

node_no_proxy() {
  # The node's own addresses are known only now; a later drop-in overrides the rendered one.
  [ -n "${NO_PROXY:-}" ] || return 0
  local addresses value unit
  addresses=$(hostname -I | tr ' ' '\n' | grep -v '^$' | paste -sd, -)
  value="${NO_PROXY},$(hostname),${addresses}"
  for unit in containerd kubelet; do
    mkdir -p "/etc/systemd/system/${unit}.service.d"
    printf '[Service]\nEnvironment="NO_PROXY=%s" "no_proxy=%s"\n' "$value" "$value" \
      > "/etc/systemd/system/${unit}.service.d/20-metalgate-node-no-proxy.conf"
  done
  systemctl daemon-reload
}

kubernetes_packages() {
  local plain="${KUBERNETES_VERSION#v}"
  if [ "$IMAGE_KIND" = custom ]; then
    check_versions "$plain"
    return
  fi
  apt-get update -q
  apt-get install -y -q apt-transport-https ca-certificates curl gpg containerd
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL "$KUBERNETES_KEY_URL" | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes.gpg
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] $KUBERNETES_REPOSITORY /" \
    > /etc/apt/sources.list.d/kubernetes.list
  apt-get update -q
  apt-get install -y -q --allow-change-held-packages \
    "kubelet=${plain}-*" "kubeadm=${plain}-*" "kubectl=${plain}-*"
  apt-mark hold kubelet kubeadm kubectl
}

check_versions() {
  # A custom image brings its own Kubernetes: install nothing, refuse a mismatch loudly.
  local want="v$1" tool got
  for tool in containerd kubeadm kubelet kubectl; do
    command -v "$tool" > /dev/null \
      || die "custom image ($IMAGE) has no $tool; build it with Kubernetes $want"
  done
  got=$(kubeadm version -o short)
  [ "$got" = "$want" ] || die "custom image ($IMAGE) has kubeadm $got, the cluster runs $want"
  got=$(kubelet --version | awk '{print $2}')
  [ "$got" = "$want" ] || die "custom image ($IMAGE) has kubelet $got, the cluster runs $want"
  got=$(kubectl version --client -o yaml | awk '/gitVersion:/ {print $2; exit}')
  [ "$got" = "$want" ] || die "custom image ($IMAGE) has kubectl $got, the cluster runs $want"
}

configure_containerd() {
  mkdir -p /etc/containerd
  if ! grep -q SystemdCgroup /etc/containerd/config.toml 2> /dev/null; then
    containerd config default > /etc/containerd/config.toml
  fi
  sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
  grep -q 'SystemdCgroup = true' /etc/containerd/config.toml \
    || die "could not set SystemdCgroup = true in /etc/containerd/config.toml"
  systemctl daemon-reload
  systemctl enable containerd
  systemctl restart containerd
}

place_kube_vip() {
  local interface
  interface=$(ip -o -4 route show default | awk '{print $5; exit}')
  [ -n "$interface" ] || die "no default route: cannot choose the interface kube-vip announces on"
  mkdir -p /etc/kubernetes/manifests
  sed "s/__METALGATE_VIP_INTERFACE__/${interface}/" __KUBE_VIP__ \
    > /etc/kubernetes/manifests/kube-vip.yaml
}

kubeadm_bootstrap() {
  if [ -f /etc/kubernetes/kubelet.conf ]; then
    log "already part of the cluster (/etc/kubernetes/kubelet.conf exists)"
    return
  fi
  systemctl enable kubelet
  case "$NODE_ROLE" in
    first-control-plane)
      if [ "$ENDPOINT_MODE" = vip ]; then place_kube_vip; fi
      kubeadm init --config __KUBEADM__ --upload-certs
      apply_cni
      ;;
    control-plane)
      kubeadm join --config __KUBEADM__
      # After the join: kube-vip reads admin.conf, which the join writes.
      if [ "$ENDPOINT_MODE" = vip ]; then place_kube_vip; fi
      ;;
    worker)
      kubeadm join --config __KUBEADM__
      ;;
    *) die "unknown NODE_ROLE $NODE_ROLE" ;;
  esac
  if [ "$NODE_ROLE" != worker ]; then
    # Joins long after the create (scale, repave) need kubeadm's uploaded certificates, which
    # it deletes after two hours, and a live bootstrap token: every control-plane node keeps
    # both (see `upkeep`).
    systemctl daemon-reload
    systemctl enable --now __UPKEEP_TIMER__
  fi
}

apply_cni() {
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f "$CNI_MANIFEST_URL"; then
      return
    fi
    log "applying the CNI manifest failed (attempt $attempt); retrying"
    sleep 10
  done
  die "could not apply the CNI manifest $CNI_MANIFEST_URL"
}

agent_python() {
  # The agent needs Python 3.11 or newer: noble's python3 is 3.12; jammy's is 3.10, with
  # python3.11 in its archive. A custom image brings its own venv support.
  local python=python3 packages="python3-venv"
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    python=python3.11 packages="python3.11 python3.11-venv"
  fi
  if [ "$IMAGE_KIND" != custom ]; then
    # shellcheck disable=SC2086  # two package names
    apt-get install -y -q $packages >&2
  fi
  echo "$python"
}

install_agent() {
  if [ ! -x __VENV__/bin/python ]; then
    "$(agent_python)" -m venv __VENV__
  fi
  __VENV__/bin/pip install --quiet "${AGENT_PIP_ARGS[@]}"
  systemctl daemon-reload
  systemctl enable metalgate-agent.service
  systemctl restart metalgate-agent.service
}

upload_certs() {
  # kubernetesVersion as of now, not of the render: upgrades move it on, and kubeadm refuses
  # a configuration too far behind it.
  UPLOAD_COPY=$(mktemp)
  trap 'rm -f "$UPLOAD_COPY"' EXIT
  sed "s/^kubernetesVersion: .*/kubernetesVersion: $(kubeadm version -o short)/" \
    __UPLOAD_CONFIG__ > "$UPLOAD_COPY"
  kubeadm init phase upload-certs --upload-certs --config "$UPLOAD_COPY"
}

ensure_tokens() {
  # The current and next window's tokens (token_window.py), the ones renders hand out.
  python3 __TOKEN_PROGRAM__ __TOKEN_SEED__ "$TOKEN_TTL_SECONDS" \
    | kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -
}

if [ "${1:-}" = upkeep ]; then
  upload_certs
  ensure_tokens
  exit 0
fi

if [ "${1:-}" = step ]; then
  "$2"
  exit 0
fi

mkdir -p "$(dirname __STATUS__)"
rm -f __ERROR__
outcome=ok
for step in prepare_node node_no_proxy kubernetes_packages configure_containerd kubeadm_bootstrap; do
  log "step $step"
  if ! "$0" step "$step"; then
    why=$(cat __ERROR__ 2> /dev/null || echo "see the log above")
    outcome="failed: $step: $why"
    log "$outcome"
    break
  fi
done
echo "$outcome" > __STATUS__
log "step install_agent"
if ! "$0" step install_agent; then
  log "failed: install_agent (pip ${AGENT_PIP_ARGS[*]})"
  exit 1
fi
[ "$outcome" = ok ] || exit 1
log "done"
"""


def node_script() -> str:
    return (
        SCRIPT.replace("__SCRIPT__", SCRIPT_PATH)
        .replace("__NODE_ENV__", NODE_ENV)
        .replace("__PROXY_ENV__", PROXY_ENV)
        .replace("__KUBEADM__", KUBEADM_CONFIG)
        .replace("__KUBE_VIP__", KUBE_VIP_TEMPLATE)
        .replace("__STATUS__", STATUS_PATH)
        .replace("__ERROR__", ERROR_PATH)
        .replace("__VENV__", AGENT_VENV)
        .replace("__UPKEEP_TIMER__", UPKEEP_TIMER)
        .replace("__TOKEN_PROGRAM__", TOKEN_PROGRAM)
        .replace("__TOKEN_SEED__", TOKEN_SEED)
        .replace("__UPLOAD_CONFIG__", UPLOAD_CERTS_CONFIG)
    )
