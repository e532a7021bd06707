"""Request and response bodies of the HTTP API (`XCreate` in, `XPublic` out).

The CLI and other clients import the modules (api.schemas.clusters, ...); they depend on the
domain models only.
"""
