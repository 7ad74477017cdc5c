"""The default path a new user takes: no key, no server, no GPU — the embedded CPU model."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli

from .helpers import read_run

pytest.importorskip("llama_cpp", reason="needs llama-cpp-python (make install)")
# the real 135M model on CPU: ~30-60 s alone on 2 cores, several times that on a busy machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_generate_with_the_embedded_model(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["generate", "-n", "4", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    run = read_run(out)
    assert len({row.instruction_id for row in run["examples"]}) == 4
    manifest = run["manifest"]
    assert manifest.config["teacher"]["kind"] == "local"  # chosen automatically
    assert "llama-cpp-python" in manifest.package_versions
    models = {model for row in run["examples"] for model in row.provenance.models.values()}
    assert models == {"SmolLM2-135M-Instruct.Q4_1"}
    for stage in ("instructions", "classify", "inputs"):
        assert manifest.usage[stage].completion_tokens > 0
