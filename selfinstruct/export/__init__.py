"""Export a run's ``examples.jsonl`` for fine-tuning: a row layout written to a container.

``--layout`` (:data:`LAYOUTS`, one render function each): ``alpaca``, ``messages``,
``sharegpt``, ``prompt-completion``. ``--to`` (:data:`CONTAINERS`, one writer each): ``json``,
``jsonl``, ``parquet``, ``hf`` (``Dataset.save_to_disk``); by default the ``--out`` suffix
decides. Rows are selected and split in :mod:`.rows`; the Hub card and push are in
:mod:`.hub`; run files are read with :func:`selfinstruct.run.files.read_rows`.
"""

from __future__ import annotations

from selfinstruct.export.containers import CONTAINERS, build_dataset, write_text_atomic
from selfinstruct.export.core import export_rows, export_run
from selfinstruct.export.layouts import (
    LAYOUTS,
    PAPER_TEMPLATES_NO_INPUT,
    PAPER_TEMPLATES_WITH_INPUT,
    prompt_completion,
    user_content,
)
from selfinstruct.export.options import ExportOptions, ExportResult
from selfinstruct.export.rows import Row, collect_rows, load_examples, parse_split

__all__ = [
    "CONTAINERS",
    "LAYOUTS",
    "PAPER_TEMPLATES_NO_INPUT",
    "PAPER_TEMPLATES_WITH_INPUT",
    "ExportOptions",
    "ExportResult",
    "Row",
    "build_dataset",
    "collect_rows",
    "export_rows",
    "export_run",
    "load_examples",
    "parse_split",
    "prompt_completion",
    "user_content",
    "write_text_atomic",
]
