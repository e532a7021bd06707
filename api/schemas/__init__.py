"""Request and response bodies of the HTTP API (`XCreate` in, `XPublic` out).

The CLI and other clients import these; they depend on the domain models only.
"""

from api.schemas.accounts import CloudAccountCreate, CloudAccountList, CloudAccountPublic
from api.schemas.clusters import (
    ClusterCreate,
    ClusterEventList,
    ClusterEventPublic,
    ClusterList,
    ClusterPublic,
    ConditionPublic,
    KubeconfigPublic,
)
from api.schemas.common import ErrorBody, FieldError, Health, Readiness
from api.schemas.gateways import (
    GatewayCreate,
    GatewayCreated,
    GatewayList,
    GatewayPublic,
    GatewayReplicaPublic,
)
from api.schemas.projects import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ProjectCreate,
    ProjectPublic,
    Role,
)

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "CloudAccountCreate",
    "CloudAccountList",
    "CloudAccountPublic",
    "ClusterCreate",
    "ClusterEventList",
    "ClusterEventPublic",
    "ClusterList",
    "ClusterPublic",
    "ConditionPublic",
    "ErrorBody",
    "FieldError",
    "GatewayCreate",
    "GatewayCreated",
    "GatewayList",
    "GatewayPublic",
    "GatewayReplicaPublic",
    "Health",
    "KubeconfigPublic",
    "ProjectCreate",
    "ProjectPublic",
    "Readiness",
    "Role",
]
