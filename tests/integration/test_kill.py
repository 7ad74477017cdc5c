"""Crash safety: SIGKILL a real ``selfinstruct generate`` at random instants, resume, audit."""

from __future__ import annotations

from .kill_harness import soak


def test_random_sigkills_lose_and_duplicate_nothing(tmp_path):
    # at 0.1 s a request, 24 kills land before the run can finish (at 0.03 s, 13 did once the
    # client got faster: too close to the 12 asked for)
    result = soak(kills=12, target=60, out=tmp_path / "run", seed=7, latency_s=0.1)
    assert result.ok, f"{result.summary()} {result.problems}"
    assert result.kills == 12


def test_random_sigkills_under_server_faults(tmp_path):
    result = soak(kills=5, target=30, out=tmp_path / "run", seed=11, fault_rate=0.3)
    assert result.ok, f"{result.summary()} {result.problems}"
