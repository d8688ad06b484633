"""Where each BabyLM 2025 task's data lies in the official `evaluation_data/full_eval` layout.

Torch-free: the Snakefile checks every task directory before any job runs, and evaluation before it
loads a model.
"""

from __future__ import annotations

import os
from pathlib import Path

from cdsynth.errors import DataError

TASK_DIRS = {
    "blimp": "blimp_filtered",
    "blimp_supplement": "supplement_filtered",
    "ewok": "ewok_filtered",
    "entity_tracking": "entity_tracking",
    "wug": "wug_adj_nominalization",
    "reading": "reading",
}


def task_dir(data_dir: str | os.PathLike, task: str) -> Path:
    path = Path(data_dir) / TASK_DIRS[task]
    if not path.is_dir():
        raise DataError(
            f"{path}: the {task} data is missing. Point eval.data_dir at the BabyLM 2025 evaluation data "
            "(the official evaluation_data/full_eval folder), e.g. ../shared/data/babylm2025_eval."
        )
    return path


def check_data_dir(data_dir: str | os.PathLike) -> None:
    """Raise DataError naming the first task whose directory is missing."""
    for task in TASK_DIRS:
        task_dir(data_dir, task)
