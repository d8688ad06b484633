"""Figures written by the workflow (matplotlib, headless)."""

from __future__ import annotations

import math
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cdsynth.io import atomic_path  # noqa: E402


def save_figure(fig, paths: list[str | os.PathLike]) -> None:
    """Write one figure to every path (PNG, PDF, ... by extension), atomically, then close it."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=os.path.splitext(str(path))[1].lstrip(".") or "png", dpi=150)
    plt.close(fig)


def plot_gains(rows: list[dict[str, Any]], labels: dict[str, str], baseline: str, paths: list) -> None:
    """Each experiment's difference from the baseline with its 95% bootstrap interval, one panel per task.

    Panels follow `labels` (task -> title) in order, in rows of at most four. Filled markers are
    significant (the interval excludes 0).
    """
    others = [row for row in rows if row["experiment"] != baseline]
    panel_rows = math.ceil(len(labels) / 4)
    shape = (panel_rows, math.ceil(len(labels) / panel_rows))  # balanced rows: 9 panels as 3 x 3
    fig, axes = plt.subplots(
        *shape, figsize=(3.25 * shape[1], 2.75 * shape[0]), layout="constrained", squeeze=False
    )
    for ax in axes.ravel()[len(labels) :]:
        ax.remove()
    base = next(row for row in rows if row["experiment"] == baseline)
    for ax, (task, label) in zip(axes.ravel(), labels.items()):
        for x, row in enumerate(others):
            diff = row[f"{task}_mean"] - base[f"{task}_mean"]
            low, high = row[f"{task}_diff_low"], row[f"{task}_diff_high"]
            ax.errorbar(
                x,
                diff,
                yerr=[[max(diff - low, 0)], [max(high - diff, 0)]],
                fmt="o",
                color=f"C{x}",
                mfc=f"C{x}" if row[f"{task}_sig"] else "white",
                capsize=3,
            )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(label + (" (lower is better)" if task == "perplexity" else ""), fontsize=9)
        ax.set_xticks(range(len(others)), [row["experiment"] for row in others], rotation=35, ha="right")
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.supylabel(f"difference from {baseline}")
    save_figure(fig, paths)


def plot_curves(curves: dict[str, dict[int, list[dict[str, float]]]], baseline: str, paths: list) -> None:
    """Held-out perplexity against step per experiment (mean over seeds, the seeds' range shaded), and the
    baseline's training perplexity dashed: where the two part, the baseline over-fits its repeated data.

    Mixtures' training loss is left out: it mixes synthetic text, so it is not comparable. An experiment
    is drawn at the steps all its seeds saved: BabyLM marks fall on steps that differ from seed to seed.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    for index, (name, runs) in enumerate(curves.items()):
        steps = sorted(set.intersection(*({row["step"] for row in history} for history in runs.values())))
        runs = {seed: [row for row in history if row["step"] in steps] for seed, history in runs.items()}
        perplexities = [[math.exp(row["val_loss"]) for row in history] for history in runs.values()]
        ax.plot(
            steps, [sum(v) / len(v) for v in zip(*perplexities)], marker="o", color=f"C{index}", label=name
        )
        ax.fill_between(
            steps,
            [min(v) for v in zip(*perplexities)],
            [max(v) for v in zip(*perplexities)],
            color=f"C{index}",
            alpha=0.15,
        )
        if name == baseline:
            train = [[math.exp(row["train_loss"]) for row in history] for history in runs.values()]
            ax.plot(
                steps,
                [sum(v) / len(v) for v in zip(*train)],
                ls="--",
                color=f"C{index}",
                label=f"{name} (training data)",
            )
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("perplexity (held-out real text)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, paths)


def plot_ratio_sweep(points: list[tuple[float, float, float]], paths: list) -> None:
    """muDeltaREL and perplexity against the synthetic ratio; points are (ratio, muDeltaREL, perplexity)."""
    points = sorted(points)
    ratios = [p[0] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    left.plot(ratios, [p[1] for p in points], marker="o")
    left.axhline(0, color="grey", lw=0.8)
    left.set_ylabel("μΔREL (%)")
    right.plot(ratios, [p[2] for p in points], marker="s", color="C1")
    right.set_ylabel("perplexity (mean-max)")
    for ax in (left, right):
        ax.set_xlabel("synthetic ratio (share of training sequences)")
        ax.grid(alpha=0.3)
    save_figure(fig, paths)


def plot_corpus_statistics(rows: list[dict[str, Any]], columns: list[str], paths: list) -> None:
    """One bar panel per statistic (a share in [0, 1]), one bar per corpus."""
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.4), layout="constrained")
    names = [row["corpus"] for row in rows]
    for ax, column in zip(axes, columns):
        values = [row[column] if row[column] is not None else float("nan") for row in rows]
        ax.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
        ax.set_title(column, fontsize=9)
        ax.set_xticks(range(len(rows)), names, rotation=35, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    save_figure(fig, paths)
