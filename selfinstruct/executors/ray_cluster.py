"""Connecting the driver to Ray: an existing cluster (``auto``, ``HOST:PORT``) or a local one.

Ray reads some settings from the environment when it is first imported, so they are set here
before ``import ray``: usage statistics off, and, for a cluster on this host (a loopback
address, or a Ray started here), every Ray address kept on 127.0.0.1. Without that, Ray
rewrites ``127.0.0.1:PORT`` to the host's interface address and listens there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from selfinstruct.config_executor import ExecutorConfig
from selfinstruct.errors import InputError

#: Ray's switch (named for Windows/macOS) that makes it use 127.0.0.1 as this node's address
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(address: str | None) -> bool:
    """True for no address (a Ray started here) or a ``[ray://]HOST:PORT`` on loopback."""
    if address is None:
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in LOOPBACK_HOSTS


def prepare_environment(address: str | None) -> None:
    """Set what Ray reads at import; call before the first ``import ray``."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if is_loopback(address):
        os.environ.setdefault(LOOPBACK_SWITCH, "0")


@dataclass
class RayConnection:
    """The driver's link to Ray; ``close`` disconnects, and stops a Ray it started."""

    address: str
    started_here: bool
    owned: bool  # False when Ray was already initialised by the caller (left as it was)

    def close(self) -> None:
        import ray

        if self.owned and ray.is_initialized():
            ray.shutdown()


def connect(settings: ExecutorConfig) -> RayConnection:
    """Connect to ``settings.ray_address`` or start a local Ray (no dashboard, quiet logs)."""
    address = settings.ray_address
    prepare_environment(address)
    try:
        import ray
    except ImportError:
        raise InputError(
            "needs Ray: pip install 'selfinstruct[ray]'", field="executor.kind"
        ) from None
    if ray.is_initialized():
        context = ray.get_runtime_context()
        return RayConnection(context.gcs_address, started_here=False, owned=False)
    options: dict[str, Any] = {
        "log_to_driver": False,
        "include_dashboard": False,
        "logging_level": "ERROR",
    }
    if address is None:  # a local Ray sized for I/O-bound actors, not for the CPU count
        cpus = max(os.cpu_count() or 1, 4, int(settings.workers * settings.worker_cpus) + 2)
        options |= {
            "address": "local",
            "num_cpus": cpus,
            "object_store_memory": settings.object_store_mb * 2**20,
        }
        if is_loopback(None):
            options["_node_ip_address"] = "127.0.0.1"
    else:
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot connect to Ray at {address}: {first}", field="executor.ray_address"
        ) from None
    gcs = ray.get_runtime_context().gcs_address
    return RayConnection(gcs, started_here=address is None, owned=True)


def ray_version() -> str:
    import ray

    return str(ray.__version__)

