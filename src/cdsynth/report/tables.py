"""Result tables: one row per experiment, each shown task's mean-max, std, paired-bootstrap p-value and flag.

The CSV is for machines (one column per number); the Markdown renders cells like the paper,
"71.72 ± 0.19*", where * marks a difference from the baseline whose 95% interval excludes 0. Which tasks a
table shows (`tasks`) and which enter its muDeltaREL (`gain_tasks`) are parameters; the defaults are the
paper's columns plus the official WUG correlation, and the paper's seven muDeltaREL tasks.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cdsynth.errors import DataError
from cdsynth.io import atomic_path
from cdsynth.report.figures import plot_curves, plot_gains
from cdsynth.report.statistics import (
    DEFAULT_TABLE_TASKS,
    PAPER_GAIN_TASKS,
    TASK_LABELS,
    paired_test,
    relative_gain,
)
from cdsynth.report.summaries import load_summary, read_history

TASK_FIELDS = ("mean", "std", "p", "sig", "diff_low", "diff_high")


def columns(tasks: Sequence[str] = DEFAULT_TABLE_TASKS) -> list[str]:
    return ["experiment", "seeds", "muDeltaREL"] + [f"{t}_{f}" for t in tasks for f in TASK_FIELDS]


def table_rows(
    experiments: list[str],
    summaries: dict[str, dict[str, Any]],
    replicates: dict[str, dict[str, np.ndarray]],
    baseline: str,
    confidence: float = 0.95,
    *,
    tasks: Sequence[str] = DEFAULT_TABLE_TASKS,
    gain_tasks: Sequence[str] = PAPER_GAIN_TASKS,
) -> list[dict[str, Any]]:
    """Rows in the given order; every experiment is compared with `baseline` (itself included).

    `tasks` are the table's columns, in order; `gain_tasks` the terms of muDeltaREL.
    """
    unknown = sorted((set(tasks) | set(gain_tasks)) - set(TASK_LABELS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; known: {list(TASK_LABELS)}")
    needed = [*tasks, *gain_tasks]
    base = summaries[baseline]
    base_means = {task: base["tasks"][task]["mean"] for task in needed}
    rows = []
    for name in experiments:
        summary = summaries[name]
        check_comparable(name, summary, baseline, base, needed)
        means = {task: summary["tasks"][task]["mean"] for task in needed}
        row: dict[str, Any] = {
            "experiment": name,
            "seeds": len(summary["seeds"]),
            "muDeltaREL": round(relative_gain(means, base_means, gain_tasks), 4),
        }
        for task in tasks:
            test = paired_test(replicates[name][task], replicates[baseline][task], task, confidence)
            row |= {
                f"{task}_mean": round(means[task], 4),
                f"{task}_std": round(summary["tasks"][task]["std"], 4),
                f"{task}_p": round(test.p_value, 4),
                f"{task}_sig": test.significant,
                f"{task}_diff_low": round(test.low, 4),
                f"{task}_diff_high": round(test.high, 4),
            }
        rows.append(row)
    return rows


def check_comparable(name: str, summary: dict, baseline: str, base: dict, tasks: Sequence[str]) -> None:
    """Paired replicates need the same index sets: the same items and bootstrap settings, and `tasks`."""
    for label, entry in ((name, summary), (baseline, base)):
        missing = [task for task in tasks if task not in entry["tasks"]]
        if missing:
            raise DataError(
                f"{label}'s summary has no {', '.join(missing)}: it was summarized by an older version; "
                "rerun its evaluations and summary."
            )
    if summary["bootstrap"] != base["bootstrap"]:
        raise DataError(f"{name} and {baseline} were bootstrapped differently; rerun their summaries.")
    for task, fingerprint in base["items"].items():
        if summary["items"].get(task) != fingerprint:
            raise DataError(
                f"{name} and {baseline} were evaluated on different {task} items (eval.max_items_per_task "
                "changed between runs?); rerun their evaluations with one setting."
            )


def write_csv(
    rows: list[dict[str, Any]], path: str | os.PathLike, tasks: Sequence[str] = DEFAULT_TABLE_TASKS
) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns(tasks))
        writer.writeheader()
        writer.writerows(rows)


def cell(row: dict[str, Any], task: str) -> str:
    text = f"{row[f'{task}_mean']:.2f} ± {row[f'{task}_std']:.2f}"
    return text + ("*" if row[f"{task}_sig"] else "")


def markdown(
    rows: list[dict[str, Any]],
    title: str,
    baseline: str,
    tasks: Sequence[str] = DEFAULT_TABLE_TASKS,
    gain_tasks: Sequence[str] = PAPER_GAIN_TASKS,
) -> str:
    header = ["Experiment", "seeds", "μΔREL", *(TASK_LABELS[task] for task in tasks)]
    lines = [
        f"# {title}",
        "",
        f"Mean-max over seeds ± std over seeds. * : the paired-bootstrap 95% interval of the difference "
        f"from {baseline} excludes 0. Perplexity: lower is better; every other task: higher is better. "
        f"μΔREL: the mean relative gain over {', '.join(TASK_LABELS[task] for task in gain_tasks)}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * len(header)) + "|",
    ]
    for row in rows:
        gain = "-" if row["experiment"] == baseline else f"{row['muDeltaREL']:.2f}%"
        gain = "n/a" if np.isnan(row["muDeltaREL"]) else gain  # a baseline score of exactly 0
        values = [row["experiment"], str(row["seeds"]), gain, *(cell(row, task) for task in tasks)]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(
    rows: list[dict[str, Any]],
    path: str | os.PathLike,
    title: str,
    baseline: str,
    tasks: Sequence[str] = DEFAULT_TABLE_TASKS,
    gain_tasks: Sequence[str] = PAPER_GAIN_TASKS,
) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(markdown(rows, title, baseline, tasks, gain_tasks), encoding="utf-8")


def make_table(
    title: str,
    experiments: list[str],
    baseline: str,
    summary_dirs: dict[str, str],
    metrics: dict[str, dict[int, str]],
    outputs: dict[str, Any],
    confidence: float = 0.95,
    *,
    tasks: Sequence[str] = DEFAULT_TABLE_TASKS,
    gain_tasks: Sequence[str] = PAPER_GAIN_TASKS,
) -> list[dict[str, Any]]:
    """Everything one table job writes: CSV, Markdown, the gains figure and the training curves.

    `tasks` are the table's (and figure's) columns, in order; `gain_tasks` the terms of muDeltaREL.
    """
    loaded = {name: load_summary(summary_dirs[name]) for name in experiments}
    rows = table_rows(
        experiments,
        {name: summary for name, (summary, _) in loaded.items()},
        {name: replicates for name, (_, replicates) in loaded.items()},
        baseline,
        confidence,
        tasks=tasks,
        gain_tasks=gain_tasks,
    )
    plot_gains(rows, {task: TASK_LABELS[task] for task in tasks}, baseline, outputs["gains"])
    curves = {
        name: {seed: read_history(path) for seed, path in metrics[name].items()} for name in experiments
    }
    plot_curves(curves, baseline, outputs["curves"])
    write_markdown(rows, outputs["markdown"], title, baseline, tasks, gain_tasks)
    write_csv(rows, outputs["csv"], tasks)
    return rows


def read_table(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
