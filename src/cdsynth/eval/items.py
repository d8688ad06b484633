"""The BabyLM 2025 zero-shot tasks as candidate lists, read from the official `full_eval` layout.

Every item is a list of (prefix, completion) candidates with the correct one first (label 0), exactly as
the official pipeline builds them: BLiMP and its supplement score whole sentences; EWoK scores
" " + Target after Context1; Entity Tracking scores each option after the shared prefix; WUG scores both
whole sentences. Reading is a table of words, scored separately.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cdsynth.errors import DataError
from cdsynth.spec.eval_data import TASK_DIRS, task_dir

# The strings pandas' `read_csv` reads as missing by default; the official pipeline reads the reading data
# with pandas, so a field spelled like one of them is missing there, whatever its column.
PANDAS_NA = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"}
    | {"NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


@dataclass
class Item:
    """One multiple-choice item: candidates as (prefix, completion), the correct one first."""

    subtask: str
    index: int
    candidates: list[tuple[str, str]]
    extra: dict = field(default_factory=dict)


def subsample(count: int, limit: int | None, name: str) -> list[int]:
    """The same `limit` of `count` indices every time for a subtask name (all of them without a limit)."""
    if limit is None or count <= limit:
        return list(range(count))
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return sorted(int(i) for i in rng.choice(count, size=limit, replace=False))


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def candidates(task: str, row: dict) -> list[tuple[str, str]]:
    if task in ("blimp", "blimp_supplement"):
        return [("", row["sentence_good"]), ("", row["sentence_bad"])]
    if task == "ewok":
        return [(row["Context1"], " " + row["Target1"]), (row["Context1"], " " + row["Target2"])]
    if task == "entity_tracking":
        return [(row["input_prefix"], option) for option in row["options"]]
    if task == "wug":
        return [("", sentence) for sentence in row["sentences"].split("\t")]
    raise ValueError(f"no candidates for task {task}")


def subtask_of(task: str, path: Path, row: dict) -> str:
    if task == "blimp":
        return row.get("UID", path.stem)
    if task == "ewok":
        return row["Domain"]
    if task == "entity_tracking":
        return f"{path.stem}_{row['numops']}_ops"
    return path.stem


def load_items(data_dir: str | os.PathLike, task: str, max_items: int | None = None) -> list[Item]:
    """A task's items, at most `max_items` per subtask (a fixed subsample), in file order."""
    by_subtask = task_items(str(data_dir), task)
    return [group[i] for name, group in by_subtask.items() for i in subsample(len(group), max_items, name)]


@functools.lru_cache(maxsize=len(TASK_DIRS))
def task_items(data_dir: str, task: str) -> dict[str, tuple[Item, ...]]:
    """Every item of a task by subtask, in file order, read once per process: an evaluation job scores
    several checkpoints and writes each one's official files from the same items."""
    by_subtask: dict[str, list[Item]] = {}
    for path in sorted(task_dir(data_dir, task).glob("*.jsonl")):
        for row in read_jsonl(path):
            subtask = subtask_of(task, path, row)
            group = by_subtask.setdefault(subtask, [])
            extra = {"ratio": float(row["ratio"])} if task == "wug" else {}
            group.append(Item(subtask, len(group), candidates(task, row), extra))
    if not by_subtask:
        raise DataError(f"{task_dir(data_dir, task)}: no .jsonl files. Check eval.data_dir.")
    return {name: tuple(group) for name, group in by_subtask.items()}


def load_reading(data_dir: str | os.PathLike) -> list[dict[str, str | None]]:
    """The reading-time rows as the official pipeline reads them (pandas `read_csv`, then `fillna`).

    A field pandas reads as missing (one of `PANDAS_NA`, in any column) is None, except a missing
    context (`item`), which becomes the string "None" as the pipeline fills it: row 320's context, the
    sentence-initial word "None", is stored as an empty field. A row whose `prev_item` is missing gets no
    previous-word predictor; that includes row 971, whose previous word's context is that same "None".
    """
    path = task_dir(data_dir, "reading") / "reading_data.csv"
    if not path.is_file():
        raise DataError(f"{path}: not found. Point eval.data_dir at the BabyLM 2025 evaluation data.")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [
            {name: None if value in PANDAS_NA else value for name, value in row.items()}
            for row in csv.DictReader(handle)
        ]
    for index, row in enumerate(rows):
        row["item"] = row["item"] or "None"
        if row["word"] is None or (row["prev_item"] is not None and row["prev_word"] is None):
            raise DataError(f"{path}: row {index} has a context but no word, which cannot be scored.")
    return rows
