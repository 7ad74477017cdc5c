"""Containers: where the rendered rows go, one writer per container in :data:`CONTAINERS`.

* ``json``: a JSON list; ``jsonl``: one object a line; ``parquet``: a Parquet file (pyarrow);
  with ``--split`` each split is its own file, ``data.jsonl`` -> ``data-train.jsonl``;
* ``hf``: a directory written by ``Dataset.save_to_disk`` (a ``DatasetDict`` when split).

Every file is written to a temporary name and renamed into place; a saved dataset is
written beside its target and swapped in.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from selfinstruct.datafiles import atomic_path, import_datasets, import_pyarrow
from selfinstruct.errors import InputError

Tables = dict[str, list[dict[str, Any]]]
WriteContainer = Callable[[Path, Tables], list[Path]]

SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def split_path(out: Path, name: str) -> Path:
    """``data.jsonl`` -> ``data-train.jsonl``."""
    return out.with_name(f"{out.stem}-{name}{out.suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _per_table(write: Callable[[Path, list[dict[str, Any]]], None]) -> WriteContainer:
    """A container of one file per table (``out`` itself when not split)."""

    def write_tables(out: Path, tables: Tables) -> list[Path]:
        paths = []
        for name, table in tables.items():
            path = split_path(out, name) if name else out
            write(path, table)
            paths.append(path)
        return paths

    return write_tables


def write_json(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """A JSON list, atomically."""
    write_text_atomic(path, json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n")


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """One JSON object a line, atomically."""
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_parquet(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """A Parquet file (pyarrow), written to a temporary name and renamed into place."""
    pa, pq = import_pyarrow()
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(list(rows)), tmp)


def build_dataset(tables: Tables) -> Any:
    """A ``datasets.Dataset`` (one table named ``""``) or a ``DatasetDict`` (named splits)."""
    datasets = import_datasets()
    if list(tables) == [""]:
        return datasets.Dataset.from_list(tables[""])
    return datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in tables.items()}
    )


def save_hf(out: Path, dataset: Any) -> None:
    """``save_to_disk`` into a temporary directory, then swap it into place."""
    if out.exists():
        if not out.is_dir():
            raise InputError("exists and is not a directory", path=out, field="--out")
        if any(out.iterdir()) and not _is_saved_dataset(out):
            raise InputError(
                "directory exists and is not a saved dataset; choose an empty or new one",
                path=out,
                field="--out",
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    logging = import_datasets().utils.logging
    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        dataset.save_to_disk(str(staging / "data"))
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
            os.replace(out, old / "data")
        os.replace(staging / "data", out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if bars:
            logging.enable_progress_bar()


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def write_hf(out: Path, tables: Tables) -> list[Path]:
    save_hf(out, build_dataset(tables))
    return [out]


CONTAINERS: dict[str, WriteContainer] = {
    "json": _per_table(write_json),
    "jsonl": _per_table(write_jsonl),
    "parquet": _per_table(write_parquet),
    "hf": write_hf,
}


def resolve_container(to: str | None, out: Path | None) -> str | None:
    """The container: ``to`` if given, else from the ``out`` suffix (None: nothing written).

    A ``.json``/``.jsonl`` name that contradicts ``--to json``/``jsonl`` is refused.
    """
    implied = SUFFIXES.get(out.suffix) if out is not None else None
    if to is not None:
        if to not in CONTAINERS:
            raise InputError(f"unknown container {to!r} (one of {', '.join(CONTAINERS)})")
        if to in ("json", "jsonl") and implied in ("json", "jsonl") and implied != to:
            raise InputError(f"--to {to} does not match the file name", path=out, field="--out")
        return to
    if out is None:
        return None
    if implied is None:
        raise InputError(
            "must end in .json (a JSON list), .jsonl (one object a line) or .parquet; "
            "or give --to (hf for a saved dataset directory)",
            path=out,
            field="--out",
        )
    return implied


def check_out(out: Path | None, container: str | None, splits: Sequence[str]) -> None:
    """Refuse an ``--out`` file name that is a directory, before anything is read."""
    if out is None or container == "hf":
        return
    for target in [split_path(out, name) for name in splits] if splits else [out]:
        if target.is_dir():
            raise InputError("is a directory, expected a file name", path=target, field="--out")
