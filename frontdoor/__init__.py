"""The gateway-facing front door to Temporal: each gateway reaches only its own task queue."""
