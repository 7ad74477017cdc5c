"""Ray tests: each starts a real 2-node cluster on 127.0.0.1 (``tests.ray.cluster``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from selfinstruct.executors.ray_cluster import prepare_environment
from tests.ray.cluster import LOOPBACK, LocalCluster, local_cluster

prepare_environment(LOOPBACK + ":0")  # before Ray is first imported: it reads these then
pytest.importorskip("ray", reason="needs Ray: pip install 'selfinstruct[ray]'")


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A head and one worker node, 1 CPU each."""
    with local_cluster(nodes=2) as handle:
        yield handle
