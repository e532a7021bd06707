"""Tables of the store. Only workflow activities write lifecycle columns (phase, machines)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str] = mapped_column(String(200))
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """Keys are stored as a SHA-256 of a 256-bit random secret: a lookup needs no salt."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(16))
    operator: Mapped[bool] = mapped_column(Boolean, default=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Gateway(Base):
    __tablename__ = "gateways"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    proxy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime | None]
    secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    hostname: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime | None]
    last_heartbeat_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # X25519 public key sent at registration; secrets only this gateway needs are sealed to it.
    sealing_public_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GatewayReplica(Base):
    """One heartbeating replica of a gateway; several may share one queue."""

    __tablename__ = "gateway_replicas"

    gateway_id: Mapped[str] = mapped_column(
        ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True
    )
    replica_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    maas_reachable: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class CloudAccount(Base):
    __tablename__ = "cloud_accounts"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    maas_url: Mapped[str] = mapped_column(String(2048))
    # The key sealed to the account's gateway (only that gateway opens it) and its digest to
    # show. `maas_api_key_enc` (store-key Fernet) is kept only for accounts stored before
    # sealing whose gateway has no sealing key yet; '' once sealed.
    maas_api_key_sealed: Mapped[str | None] = mapped_column(Text)
    maas_api_key_fingerprint: Mapped[str | None] = mapped_column(String(32))
    maas_api_key_enc: Mapped[str] = mapped_column(Text, default="")
    # "system" or a gateways.id; not a foreign key because the system gateway has no row.
    gateway_id: Mapped[str] = mapped_column(String(40), index=True)
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    validated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cluster(Base):
    __tablename__ = "clusters"
    # active_name is the name while the cluster lives and NULL once Deleted: the unique
    # constraint then refuses a duplicate live name without blocking reuse after delete.
    __table_args__ = (
        UniqueConstraint("project_id", "active_name"),
        Index("ix_clusters_project_phase", "project_id", "phase"),
        Index("ix_clusters_silence", "silent", "last_heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    active_name: Mapped[str | None] = mapped_column(String(63))
    # Plain ids, not foreign keys: a Deleted cluster's row outlives its account and gateway.
    cloud_account_id: Mapped[str] = mapped_column(String(40), index=True)
    gateway_id: Mapped[str] = mapped_column(String(40), index=True)
    spec: Mapped[dict[str, Any]]
    phase: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text, default="")
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    machines: Mapped[list[Any]] = mapped_column(default=list)
    kubernetes_version: Mapped[str] = mapped_column(String(32))
    kubeconfig_enc: Mapped[str | None] = mapped_column(Text)
    agent_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_heartbeat_at: Mapped[datetime | None]
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delete_requested_at: Mapped[datetime | None]
    # Intent, like the spec: set by POST /pause once the management workflow took it.
    management_paused_at: Mapped[datetime | None]


class ClusterBootstrapRow(Base):
    """A cluster's kubeadm bootstrap material, encrypted; one row per cluster, made once.

    The primary key makes concurrent renders of one cluster's nodes agree on one CA: the
    first insert wins, the others read it back. `token_id` (the public half of the
    bootstrap token) lets a rotation replace exactly the token it saw expiring.
    """

    __tablename__ = "cluster_bootstrap"

    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    material_enc: Mapped[str] = mapped_column(Text)
    token_enc: Mapped[str] = mapped_column(Text)
    token_id: Mapped[str] = mapped_column(String(6))
    token_expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentNode(Base):
    """The last state each node's agent reported; a heartbeat that matches it signals nothing."""

    __tablename__ = "agent_nodes"
    __table_args__ = (Index("ix_agent_nodes_silence", "silent", "last_seen_at"),)

    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Changed and not yet signalled: the cluster's outbox row says when to send it.
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # The node's own agent last heard from (batched, like clusters.last_heartbeat_at), and
    # whether the silence sweep marked it silent since (store/node_silence.py).
    last_seen_at: Mapped[datetime | None]
    silent: Mapped[bool] = mapped_column(Boolean, default=False)


class AgentOutboxRow(Base):
    """A cluster with agent changes not yet signalled (store/agent_outbox.py): one row per
    cluster, so changes coalesce; a sender leases it while the signal is in flight."""

    __tablename__ = "agent_outbox"

    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    change_id: Mapped[str] = mapped_column(String(32))  # new on every change
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentCommandRow(Base):
    __tablename__ = "agent_commands"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    node: Mapped[str] = mapped_column(String(255), default="")
    progress: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClusterEvent(Base):
    __tablename__ = "cluster_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    phase: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)


class IdempotencyRecord(Base):
    """The answer to a request sent with an `Idempotency-Key`, replayed to its retries."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)  # caller and route
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    """One mutating or refused call: who, on what, with which outcome. Never a secret."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_project_at", "project_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(40))
    actor_name: Mapped[str | None] = mapped_column(String(63))
    project_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(120))
    target: Mapped[str] = mapped_column(String(255), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
