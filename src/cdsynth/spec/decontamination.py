"""The decontamination filter of `corpus.decontaminate` and `synth.decontaminate`: what it makes, where.

Off by default. On, the real train split, or each synthetic corpus, gets a filtered copy without the
samples holding an evaluation n-gram (`cdsynth.describe.decontamination`), and everything trained on it is
made from the copy: the tokenizer and the train token shards, or the corpus's synthetic token shards.

Torch-free. The paths are built on `cdsynth.spec.paths`'s, but defined here: scripts (evaluation, budgets,
tables) import paths.py, so a path added there would change their code digests and rerun every evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdsynth.spec.eval_data import TASK_DIRS
from cdsynth.spec.paths import RESULTS, corpus_split

# The filtered copies' folder: beside the real splits, inside each synthetic corpus.
DECONTAMINATED = "decontaminated"
DECONTAMINATED_TRAIN = f"{RESULTS}/corpus/{DECONTAMINATED}/train.arrow"
# The filtered train split's statistics: its documents, and how many the filter dropped of how many.
DECONTAMINATED_TRAIN_STATS = f"{RESULTS}/corpus/{DECONTAMINATED}/train_stats.json"
# The sections that take `decontaminate`, and what each filters.
SECTIONS = {"corpus": "the real train split", "synth": "each synthetic corpus"}


def decontaminated_corpus(corpus: str) -> str:
    """A synthetic corpus without its contaminated samples: shards, manifest.json and a card."""
    return f"{corpus}/{DECONTAMINATED}"


def decontaminates(config: dict[str, Any], section: str) -> bool:
    """Whether the config filters `section`'s data (`corpus` or `synth`); absent means no."""
    return bool(config[section].get("decontaminate", False))


def train_split(config: dict[str, Any]) -> str:
    """The real train split everything is trained on: the filtered copy when `corpus.decontaminate`."""
    return DECONTAMINATED_TRAIN if decontaminates(config, "corpus") else corpus_split("train")


def decontamination_errors(config: dict[str, Any]) -> list[str]:
    """A filter needs the evaluation data it filters against: every task's files at eval.data_dir.

    Checked when the workflow loads, so that a filter never runs against a folder that would match
    nothing (a task without files would drop nothing, silently).
    """
    on = [section for section in SECTIONS if decontaminates(config, section)]
    if not on:
        return []
    data_dir = Path(config["eval"]["data_dir"])
    missing = [task for task, name in TASK_DIRS.items() if not _task_files(data_dir / name, task)]
    if not missing:
        return []
    return [
        f"{section}.decontaminate: filtering {SECTIONS[section]} needs the BabyLM 2025 evaluation data at "
        f"eval.data_dir ({data_dir}), which has no files for {', '.join(missing)}. Point eval.data_dir at "
        "the official evaluation_data/full_eval folder, or set "
        f"{section}.decontaminate: false"
        for section in on
    ]


def _task_files(path: Path, task: str) -> bool:
    """Whether a task's folder holds the files `cdsynth.describe.contamination` reads its items from."""
    if task == "reading":
        return (path / "reading_data.csv").is_file()
    return path.is_dir() and any(path.glob("*.jsonl"))
