"""Trained checkpoints: finding the one a run selected, and loading one as a causal LM for inference.

Shared by synthesis and evaluation, which both score text with checkpoints the trainer wrote.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from cdsynth.errors import DataError


def require_model_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise DataError(
            f"{path}: not a Hugging Face model directory (no config.json); train or copy it first."
        )
    return path


def load_causal_lm(
    path: str | os.PathLike,
    device: torch.device,
    dtype: str = "float32",
    attention_dropout: float | None = None,
):
    """A model in `dtype` ("float32" | "bfloat16") on `device`; with `attention_dropout`, kept in train mode.

    The dropout amateur is the paper's CD-Drop: GOOD's weights with attention dropout active while it
    scores, so it is a noisier, weaker copy of the expert.
    """
    path = require_model_dir(path)
    overrides = {} if attention_dropout is None else {"attention_dropout": attention_dropout}
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=getattr(torch, dtype), attn_implementation="sdpa", **overrides
    )
    model.to(device)
    return model.train() if attention_dropout else model.eval()


def best_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint of a finished run with the lowest validation loss (its metrics.csv)."""
    metrics = Path(run_dir) / "metrics.csv"
    if not metrics.is_file():
        raise DataError(f"{metrics}: not found. Finish the training run first (rerun Snakemake).")
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    best = min(rows, key=lambda row: float(row["val_loss"]))
    return Path(run_dir) / f"step{best['step']}"
