"""The wheel: built from the repository, installed in a fresh venv, run from another directory.

Offline and quick on purpose: the wheel is built without build isolation (``setuptools`` and
``build`` are in the ``dev`` extra), the venv is made without pip and without system
site-packages, the wheel goes in with ``--no-deps``, and the dependencies are borrowed from
the test environment through a ``.pth`` line placed *after* the venv's own site-packages. So
``selfinstruct`` itself, its prompts and its seeds can only come from the wheel; the test
checks that they do.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: what a build reads from the repository (everything else must not matter)
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "selfinstruct", "prompts", "seeds")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a clean copy of the build inputs (no stale build/ can leak in)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(
                path, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist), str(source)])  # fmt: skip
    (built,) = dist.glob("selfinstruct-*.whl")
    return built


def run(command: list[str], cwd: Path | None = None, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ.update(env)
    result = subprocess.run(
        command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_wheel_ships_every_package_file_and_the_license(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("prompts", "seeds"):
        for path in (REPO / folder).iterdir():
            assert f"selfinstruct/assets/{folder}/{path.name}" in names
    data_files = [
        (Path(folder) / name).relative_to(REPO).as_posix()
        for folder, _, files in os.walk(REPO / "selfinstruct", followlinks=True)
        if "__pycache__" not in folder
        for name in files
        if not name.endswith((".py", ".pyc"))
    ]
    assert "selfinstruct/assets/seeds/seed_tasks.jsonl" in data_files
    assert [name for name in data_files if name not in names] == []
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()
    assert not [name for name in names if name.startswith("tests/")]


def test_wheel_in_a_fresh_venv_runs_init_and_generate_elsewhere(
    wheel, tmp_path, scripted_server
):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)])  # fmt: skip
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    venv_site = Path(run([str(python), "-c", purelib]).strip())
    borrowed = [*site.getsitepackages(), sysconfig.get_path("purelib")]
    (venv_site / "zz_test_dependencies.pth").write_text("\n".join(dict.fromkeys(borrowed)) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    locate = ("import selfinstruct, selfinstruct.assets as a; print(selfinstruct.__file__); "
              "print(a.prompts_dir()); print(a.default_seed_file())")  # fmt: skip
    where = run([str(python), "-c", locate], cwd=elsewhere)
    for line in where.splitlines():
        assert Path(line).is_relative_to(venv_site), where

    selfinstruct = str(venv / "bin" / "selfinstruct")
    key = {"OPENAI_API_KEY": "sk-test"}
    common = ["--base-url", scripted_server.base_url, "--model", "X", "-n", "3", "-q"]
    run([selfinstruct, "generate", *common, "--out", "shipped"], cwd=elsewhere, **key)
    run([selfinstruct, "init", "starter"], cwd=elsewhere)
    run([selfinstruct, "generate", "--config", "starter/selfinstruct.yaml", *common,
         "--out", "custom"], cwd=elsewhere, **key)  # fmt: skip
    for out in ("shipped", "custom"):
        examples = (elsewhere / out / "examples.jsonl").read_text().splitlines()
        assert len({json.loads(line)["instruction_id"] for line in examples}) == 3
