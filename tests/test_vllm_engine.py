"""Starting the vLLM engine, without vLLM: device check, engine arguments, the root cause of a
failed start, and the stderr tail it is read from (real child processes writing to fd 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from selfinstruct.errors import TeacherUnavailable
from selfinstruct.teachers.choice import parse_teacher_config
from selfinstruct.teachers.vllm_engine import (
    DEFAULT_CPU_KV_CACHE_GIB,
    GIB,
    StderrTail,
    check_platform,
    engine_args,
    load_engine,
    root_cause,
)


def fake_vllm_platform(monkeypatch, device_type: str, unspecified: bool = False) -> None:
    platform = types.SimpleNamespace(
        device_type=device_type, is_unspecified=lambda: unspecified
    )
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = platform  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)


@pytest.mark.parametrize("device", ["cuda", "cpu", "rocm", "xpu"])
def test_any_device_vllm_found_is_accepted(monkeypatch, device):
    fake_vllm_platform(monkeypatch, device)
    assert check_platform() == device


def test_no_platform_is_refused_in_one_line(monkeypatch):
    fake_vllm_platform(monkeypatch, "", unspecified=True)
    with pytest.raises(TeacherUnavailable) as caught:
        check_platform()
    message = str(caught.value)
    assert "\n" not in message
    assert "no device vLLM can run on" in message and "--base-url" in message


def test_cpu_defaults_start_eager_with_a_small_kv_cache(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    args = engine_args(parse_teacher_config(dict(kind="vllm", model="m")), seed=7, device="cpu")
    assert args["enforce_eager"] is True
    assert args["enable_chunked_prefill"] is False  # vLLM 0.32's CPU seeded-sampling crash
    assert args["kv_cache_memory_bytes"] == int(DEFAULT_CPU_KV_CACHE_GIB * GIB)
    assert args["seed"] == 7 and args["model"] == "m"
    assert "max_model_len" not in args


def test_cpu_leaves_the_kv_cache_to_a_set_environment_variable(monkeypatch):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "5")
    args = engine_args(parse_teacher_config(dict(kind="vllm", model="m")), seed=None, device="cpu")
    assert "kv_cache_memory_bytes" not in args
    assert "seed" not in args


def test_gpu_defaults_are_vllms_own(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    args = engine_args(parse_teacher_config(dict(kind="vllm", model="m")), seed=None, device="cuda")
    assert args["enforce_eager"] is False
    assert "kv_cache_memory_bytes" not in args and "enable_chunked_prefill" not in args
    assert args["gpu_memory_utilization"] == 0.9


def test_config_fields_reach_the_engine():
    config = parse_teacher_config(dict(
        kind="vllm", model="m", enforce_eager=False, kv_cache_gib=0.5, max_model_len=1024,
        tensor_parallel_size=2,
    ))  # fmt: skip
    args = engine_args(config, seed=None, device="cpu")
    assert args["enforce_eager"] is False
    assert args["kv_cache_memory_bytes"] == GIB // 2
    assert args["max_model_len"] == 1024 and args["tensor_parallel_size"] == 2


ENGINE_LOG = [
    "INFO 12-01 10:00:00 [core.py:90] Initializing a V1 LLM engine",
    "\x1b[1;36m(EngineCore pid=123)\x1b[0;0m ERROR [core.py:1510] EngineCore failed to start.",
    "Traceback (most recent call last):",
    '  File "vllm/v1/worker/cpu_worker.py", line 218, in determine_available_memory',
    "ValueError: Available memory on node 0 (3.1/23.4 GiB) on kv cache allocation is less "
    "than requested memory for kv (900.0 GiB).",
    "INFO 12-01 10:00:01 [launcher.py:40] shutting down",
]


def test_the_engine_processs_exception_replaces_see_root_cause_above():
    generic = RuntimeError(
        "Engine core initialization failed. See root cause above. Failed core proc(s): {}"
    )
    reason = root_cause(generic, ENGINE_LOG)
    assert reason.startswith("ValueError: Available memory on node 0")
    assert "900.0 GiB" in reason


def test_a_prefixed_log_line_is_read_too():
    log = [
        "(Worker pid=7) ERROR 12-02 02:31:35 [multiproc_executor.py:1063] Traceback (most ...",
        "(EngineCore pid=6) ERROR 12-02 02:31:35 [core.py:1512] RuntimeError: Worker failed "
        "with error 'CPU Generator does not use offset', please check the stack trace above",
    ]
    dead = RuntimeError(
        "EngineCore encountered an issue. See stack trace (above) for the root cause."
    )
    assert root_cause(dead, log) == (
        "RuntimeError: Worker failed with error 'CPU Generator does not use offset', please "
        "check the stack trace above"
    )


def test_without_a_log_the_innermost_cause_is_named():
    try:
        try:
            raise FileNotFoundError("no config.json in /models/x")
        except FileNotFoundError as inner:
            raise RuntimeError("could not create the engine\nmore detail") from inner
    except RuntimeError as outer:
        assert root_cause(outer) == "FileNotFoundError: no config.json in /models/x"
    assert root_cause(RuntimeError("See root cause above"), ["no exception here"]) == (
        "RuntimeError: See root cause above"
    )


def test_stderr_tail_keeps_what_child_processes_write_and_still_forwards_it(capfd):
    child = "import sys; sys.stderr.write('ValueError: from the child\\n')"
    with StderrTail() as tail:
        subprocess.run([sys.executable, "-c", child], check=True)
        os.write(2, b"parent line\n")  # what sys.stderr does outside pytest's capture
    assert tail._thread is not None
    tail._thread.join(timeout=5)
    assert "ValueError: from the child" in tail.lines
    assert "parent line" in tail.lines
    forwarded = capfd.readouterr().err
    assert "ValueError: from the child" in forwarded and "parent line" in forwarded


def test_a_failed_engine_start_is_one_line_with_its_reason():
    class FailingLLM:
        def __init__(self, **kwargs):
            subprocess.run(
                [sys.executable, "-c", f"import sys; sys.stderr.write({ENGINE_LOG[4]!r})"],
                check=True,
            )
            raise RuntimeError("Engine core initialization failed. See root cause above.")

    vllm = types.SimpleNamespace(LLM=FailingLLM)
    with pytest.raises(TeacherUnavailable) as caught:
        load_engine(vllm, {"model": "/models/tiny"})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("vLLM could not load /models/tiny: ValueError: Available memory")
