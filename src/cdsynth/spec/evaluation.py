"""How checkpoints are evaluated: the config's `eval` settings that reach the scoring. Torch-free.

`stride` (which checkpoints are scored) is the plan's, not the scorer's: it stays in the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdsynth.errors import ConfigError
from cdsynth.spec.settings import DTYPES, bound_problems, setting

READING_PREDICTORS = ("official", "joint")


@dataclass(frozen=True)
class Evaluation:
    """What every evaluated checkpoint is scored with; the defaults are the official pipeline's."""

    data_dir: str = setting(help="the official evaluation_data/full_eval folder")
    max_items_per_task: int | None = setting(
        None, whole=True, minimum=1, also=(None,), help="items scored per task (None: all, as the paper)"
    )
    batch_size: int = setting(64, whole=True, minimum=1, help="sequences scored together")
    window: int | None = setting(
        None, whole=True, minimum=2, also=(None,), help="perplexity window (None: the model's positions)"
    )
    reading_predictor: str = setting(
        "official",
        choices=READING_PREDICTORS,
        help="a word's surprisal for Reading / Eye Tracking: the official pipeline's piece-by-piece "
        "predictor, or its tokens scored jointly after the context",
    )
    dtype: str = setting(
        "float32",
        choices=DTYPES,
        help="the model's precision while scored (float32: the official pipeline's)",
    )

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if problems:
            raise ConfigError("invalid evaluation settings:\n  " + "\n  ".join(problems))

    @classmethod
    def of(cls, section: dict[str, Any], block_size: int) -> Evaluation:
        """The config's `eval` section; a window left out is the training block size."""
        values = {key: value for key, value in section.items() if key != "stride"}
        return cls(**values | {"window": section["window"] or block_size})
