"""A real multi-node Ray cluster on this host, every address on 127.0.0.1, for tests and benches.

``local_cluster(nodes=2)`` starts a head and ``nodes - 1`` worker raylets (``ray.cluster_utils``),
each with its own CPUs and a small object store, in a temporary directory, and shuts them down
by handle on exit (never ``ray stop``, which kills every Ray process of the host by name).

    python -m tests.ray.cluster --nodes 2 --seconds 900   # prints the address, then waits
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from selfinstruct.executors.ray_cluster import prepare_environment

#: every Ray node's object store (bytes): small, the rows are small
OBJECT_STORE_BYTES = 200 * 2**20
LOOPBACK = "127.0.0.1"
#: a lost node is noticed in ~1.5 s, not Ray's default of about half a minute
FAST_FAILURE = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
                "health_check_timeout_ms": 500}  # fmt: skip


@dataclass
class LocalCluster:
    cluster: Any  # ray.cluster_utils.Cluster
    workers: list[Any]  # the worker nodes' handles, for remove_node

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_worker(self, num_cpus: int = 1) -> Any:
        node = self.cluster.add_node(**_node_args(num_cpus))
        self.workers.append(node)
        self.cluster.wait_for_nodes()
        return node

    def remove_worker(self, node: Any) -> None:
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)


def _node_args(num_cpus: int) -> dict[str, Any]:
    return {
        "num_cpus": num_cpus,
        "node_ip_address": LOOPBACK,
        "object_store_memory": OBJECT_STORE_BYTES,
    }


@contextlib.contextmanager
def local_cluster(nodes: int = 2, num_cpus: int = 1) -> Iterator[LocalCluster]:
    """A head plus ``nodes - 1`` workers, ``num_cpus`` each, all on loopback."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    previous = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    prepare_environment(LOOPBACK + ":0")
    from ray.cluster_utils import Cluster

    head = {**_node_args(num_cpus), "include_dashboard": False, "_system_config": FAST_FAILURE}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    handle = LocalCluster(cluster, [])
    try:
        for _ in range(nodes - 1):
            handle.add_worker(num_cpus)
        yield handle
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        if previous is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = previous
        for _ in range(20):  # Ray's processes may still be writing their last logs
            shutil.rmtree(temp, ignore_errors=True)
            if not os.path.exists(temp):
                break
            time.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--drop-worker-after", type=float, metavar="SECONDS",
                        help="remove the last worker node (its raylet killed) after this long")
    args = parser.parse_args()
    with local_cluster(args.nodes, args.num_cpus) as cluster:
        print(cluster.address, flush=True)
        started = time.monotonic()
        if args.drop_worker_after is not None:
            time.sleep(args.drop_worker_after)
            cluster.remove_worker(cluster.workers[-1])
            print(f"removed a worker node after {args.drop_worker_after:.0f} s", flush=True)
        time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
