"""Trained checkpoints: finding the one a run selected, and loading one as a causal LM for inference.

Shared by synthesis and evaluation, which both score text with checkpoints the trainer wrote.
"""

from __future__ import annotations

import csv
import inspect
import os
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from cdsynth.errors import DataError

RECOPY = "Retrain or copy the checkpoint again."
CACHE_KEYWORDS: dict[type, str] = {}  # a plain dict, not functools.cache: dynamo traces a dict lookup


def cache_keyword(model_class: type) -> str:
    """The name `forward` takes the KV cache under, decided once per model class.

    Synthesis and evaluation both run models on a cache they hand in.
    transformers 5.24 renamed `past_key_values` to `cache` (the old name warns and goes in 5.40); the
    vLLM venv's 5.19 knows only the old one.
    """
    if model_class not in CACHE_KEYWORDS:
        parameters = inspect.signature(model_class.forward).parameters
        CACHE_KEYWORDS[model_class] = "cache" if "cache" in parameters else "past_key_values"
    return CACHE_KEYWORDS[model_class]


def require_model_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise DataError(
            f"{path}: not a Hugging Face model directory (no config.json); train or copy it first."
        )
    return path


def load_config(path: str | os.PathLike) -> PretrainedConfig:
    """The checkpoint's config, or a DataError naming its config.json when that is unreadable."""
    path = require_model_dir(path)
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{path / 'config.json'}: not a readable model config ({err}). {RECOPY}") from err


def weights_files(path: Path) -> str:
    """The weights files a directory holds, for an error message."""
    names = sorted(p.name for p in path.iterdir() if p.suffix in {".safetensors", ".bin"})
    return ", ".join(str(path / name) for name in names) or f"{path} (no weights file)"


def load_causal_lm(
    path: str | os.PathLike,
    device: torch.device,
    dtype: str = "float32",
    config_overrides: dict[str, Any] | None = None,
    attn_implementation: str = "sdpa",
) -> PreTrainedModel:
    """A model in `dtype` ("float32" | "bfloat16") on `device`, in eval mode.

    `config_overrides` replaces config fields before the modules are built (they read the config only
    then). A field the config lacks is refused: no module would read it, so the override would do nothing.
    """
    config = load_config(path)
    unknown = set(config_overrides or {}) - set(config.to_dict())
    if unknown:
        raise ValueError(f"config overrides {sorted(unknown)}: not fields of {config.model_type}")
    config.update(config_overrides or {})
    model = from_pretrained(Path(path), config, getattr(torch, dtype), attn_implementation)
    return model.to(device).eval()


def from_pretrained(
    path: Path, config: PretrainedConfig, dtype: torch.dtype, attn_implementation: str
) -> PreTrainedModel:
    """`from_pretrained`, on eager attention for a family without SDPA (transformers refuses those with a
    ValueError, e.g. BLOOM), and with a DataError naming the weights when they cannot be read."""
    try:
        return AutoModelForCausalLM.from_pretrained(
            path, config=config, dtype=dtype, attn_implementation=attn_implementation
        )
    except ValueError:
        if attn_implementation != "sdpa":
            raise
        print(f"{path}: {config.model_type} does not load with SDPA attention; using eager.", file=sys.stderr)
        return from_pretrained(path, config, dtype, "eager")
    except (OSError, SafetensorError) as err:
        raise DataError(f"{weights_files(path)}: cannot load the weights ({err}). {RECOPY}") from err


def best_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint of a finished run with the lowest validation loss (its metrics.csv)."""
    metrics = Path(run_dir) / "metrics.csv"
    if not metrics.is_file():
        raise DataError(f"{metrics}: not found. Finish the training run first (rerun Snakemake).")
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    best = min(rows, key=lambda row: float(row["val_loss"]))
    return Path(run_dir) / f"step{best['step']}"
