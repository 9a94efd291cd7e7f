"""The environment variables that name the servers a process talks to.

Why a module of its own: the services read them in production (a Kubernetes Secret sets them),
and the dev-only ``depthflow.devstack`` (embedded servers) writes them for local runs and tests.
Keeping the names here lets a service image hold ``libs/common`` without the dev servers.
"""

from __future__ import annotations

__all__ = ["NATS_URL_ENV", "POSTGRES_URL_ENV", "REDIS_URL_ENV"]

NATS_URL_ENV = "DEPTHFLOW_NATS_URL"
POSTGRES_URL_ENV = "DEPTHFLOW_POSTGRES_URL"
REDIS_URL_ENV = "DEPTHFLOW_REDIS_URL"
