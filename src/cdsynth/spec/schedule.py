"""Which steps a training run saves; free of torch, so that the Snakefile can ask quickly."""

from __future__ import annotations


def checkpoint_steps(steps: int, save_every: int) -> list[int]:
    """Steps after which a checkpoint is saved: every `save_every`, and always the last."""
    return sorted(set(range(save_every, steps + 1, save_every)) | {steps})


def evaluated_steps(saved: list[int], stride: int) -> list[int]:
    """Every `stride`-th saved checkpoint, counted back from the last, which is always evaluated."""
    return saved[::-1][::stride][::-1]
