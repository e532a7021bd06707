"""Every workflow class a control-plane worker registers."""

from __future__ import annotations

from workflows.create import ClusterCreate
from workflows.delete import ClusterDelete
from workflows.manage import ClusterManagement
from workflows.orphan_sweep import OrphanSweep
from workflows.plan import ClusterPlan
from workflows.reconcile import Reconcile
from workflows.sweep import AgentSilenceSweep
from workflows.validate import CloudAccountValidate

CONTROL_PLANE_WORKFLOWS: list[type] = [
    ClusterCreate,
    ClusterDelete,
    ClusterManagement,
    CloudAccountValidate,
    ClusterPlan,
    AgentSilenceSweep,
    OrphanSweep,
    Reconcile,
]
