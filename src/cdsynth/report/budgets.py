"""The word-budget table of a table's runs: what each saw against its BabyLM track (`budget.json`)."""

from __future__ import annotations

import csv
import os
from typing import Any

from cdsynth.io import atomic_path, read_json
from cdsynth.spec.tracks import budget_problem, limits_of

COLUMNS = [
    "experiment",
    "run",
    "track",
    "real_train_words",
    "prompt_words",
    "data_words",
    "words_seen_real",
    "words_seen_synthetic",
    "words_seen",
    "passes_over_real",
    "ancillary",
    "within_limits",
]


def budget_row(experiment: str, budget: dict[str, Any], track: str) -> dict[str, Any]:
    data, seen = budget["data"], budget["seen"]
    ancillary = "; ".join(
        f"{model['role']} {model['checkpoint']} ({model['words_seen']:,} words seen)"
        if model["words_seen"] is not None
        else f"{model['role']} {model['checkpoint']}"
        for model in budget["ancillary"]
    )
    return {
        "experiment": experiment,
        "run": budget["run"],
        "track": track,
        "real_train_words": data["real_train_words"],
        "prompt_words": data["prompt_words"],
        "data_words": data["total_words"],
        "words_seen_real": seen["real"],
        "words_seen_synthetic": seen["synthetic"],
        "words_seen": seen["total"],
        "passes_over_real": seen["passes_over_real"],
        "ancillary": ancillary,
        "within_limits": "" if limits_of(track) is None else budget_problem(track, budget) is None,
    }


def cell(value: Any) -> str:
    """A Markdown cell: counts with thousands separators, anything else as it prints."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def write_budget_table(
    experiments: list[str], budgets: list[str | os.PathLike], track: str, csv_path, markdown_path
) -> list[dict[str, Any]]:
    """One row per run (`experiments[i]` is the experiment of `budgets[i]`) against `track`, as CSV and
    Markdown."""
    rows = [budget_row(name, read_json(path), track) for name, path in zip(experiments, budgets, strict=True)]
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    limits = limits_of(track)
    header = (
        f"Track: {track} (at most {limits.data_words:,} words of data, {limits.words_seen:,} words seen)"
        if limits
        else "Track: none (words recorded, no limit enforced)"
    )
    shown = [c for c in COLUMNS if c not in ("run", "track", "ancillary")]
    lines = [header, "", "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(cell(row[c]) for c in shown) + " |" for row in rows]
    with atomic_path(markdown_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return rows
