"""The files the package ships: the default prompt templates and seed tasks.

They live at the top of the repository, ``prompts/`` and ``seeds/``. In the source tree
``selfinstruct/assets/prompts`` and ``selfinstruct/assets/seeds`` are symbolic links to those
folders; a wheel holds copies of the files at the same place. So an editable install, a wheel
and a checkout on ``PYTHONPATH`` all find them one way:
``importlib.resources.files("selfinstruct.assets") / "prompts"``. Where a checkout lost the
links (a file system without symbolic links), the repository's folders are used directly.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: the seed file ``selfinstruct generate`` starts from when no ``seeds`` is configured
SEED_FILE_NAME = "seed_tasks.jsonl"


def _shipped_dir(name: str) -> Path:
    packaged = files(__name__) / name
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / name


def prompts_dir() -> Path:
    """The folder of default prompt templates (``*.txt``)."""
    return _shipped_dir("prompts")


def seeds_dir() -> Path:
    """The folder of the default seed tasks."""
    return _shipped_dir("seeds")


def default_seed_file() -> Path:
    """The default seed tasks, ``seeds/seed_tasks.jsonl``."""
    return seeds_dir() / SEED_FILE_NAME
