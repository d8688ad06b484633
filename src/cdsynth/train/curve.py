"""A training run's loss curve (curve.png beside its checkpoints)."""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cdsynth.io import atomic_path  # noqa: E402


def plot_training_curve(history: list[dict[str, Any]], path: str | os.PathLike, title: str = "") -> None:
    """Train and validation loss against tokens seen, one point per checkpoint."""
    tokens = [row["tokens"] for row in history]
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(tokens, [row["train_loss"] for row in history], marker="o", label="train")
    ax.plot(tokens, [row["val_loss"] for row in history], marker="s", label="validation")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)
