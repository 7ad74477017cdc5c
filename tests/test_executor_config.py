"""The ``executor:`` section, ``--executor``/``--ray-address``, and what needs no Ray at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.cli.run import build_run_config
from selfinstruct.config import build_config
from selfinstruct.errors import InputError
from selfinstruct.executors.ray_cluster import is_loopback
from selfinstruct.pipeline import run_pipeline
from selfinstruct.run.fingerprint import fingerprint


def test_options_set_the_executor_section():
    config = build_run_config(executor="ray", ray_address="127.0.0.1:6379")
    assert config.executor.kind == "ray"
    assert config.executor.ray_address == "127.0.0.1:6379"
    assert build_config(None, {}).executor.kind == "local"


def test_the_executor_is_not_part_of_the_resume_fingerprint(tmp_path: Path):
    seeds = build_config(None, {}).seeds
    local = build_config(None, {})
    ray = build_config(None, {"executor.kind": "ray", "executor.workers": 7})
    assert fingerprint(local, seeds, {}) == fingerprint(ray, seeds, {})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"executor.kind": "spark"}, "executor.kind"),
        ({"executor.workers": 0}, "executor.workers"),
        ({"executor.engine": "sglang"}, "executor.engine"),
    ],
)
def test_bad_executor_settings_name_the_field(overrides: dict, field: str):
    with pytest.raises(InputError) as caught:
        build_config(None, overrides)
    assert caught.value.field == field


def test_cli_refuses_an_unknown_executor_with_exit_2(tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["generate", "--executor", "spark", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "run").exists()


def test_vllm_engine_without_a_model_is_refused_before_any_write(tmp_path: Path, scripted_server):
    config = build_config(None, {
        "teacher.base_url": [scripted_server.base_url], "executor.kind": "ray",
        "executor.engine": "vllm",
    })  # fmt: skip
    with pytest.raises(InputError, match=r"executor\.vllm\.model_source"):
        run_pipeline(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_local_runs_record_their_executor(tmp_path: Path, scripted_server):
    config = build_config(None, {"teacher.base_url": [scripted_server.base_url],
                                 "num_instructions": 3})  # fmt: skip
    run_pipeline(config, tmp_path / "run")
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert '"executor": {\n    "kind": "local"\n  }' in manifest


@pytest.mark.parametrize(
    ("address", "loopback"),
    [(None, True), ("127.0.0.1:6379", True), ("localhost:1", True), ("ray://127.0.0.1:10001", True),
     ("[::1]:6379", True), ("10.0.0.5:6379", False), ("auto", False)],
)  # fmt: skip
def test_loopback_addresses(address: str | None, loopback: bool):
    assert is_loopback(address) is loopback
