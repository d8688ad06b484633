"""The word-budget table beside each results table."""

from __future__ import annotations

import csv

from cdsynth.io import write_json
from cdsynth.report.budgets import COLUMNS, write_budget_table


def budget(run: str, synthetic: int, ancillary: list) -> dict:
    return {
        "run": run,
        "data": {"real_train_words": 1000, "prompt_words": 50 if ancillary else 0, "total_words": 1050},
        "seen": {
            "real": 16000,
            "synthetic": synthetic,
            "total": 16000 + synthetic,
            "passes_over_real": 16.0,
            "tokens": 30000,
        },  # fmt: skip
        "ancillary": ancillary,
    }


def test_one_row_per_run_with_its_words_and_the_models_behind_it(tmp_path):
    good = {"role": "good", "checkpoint": "results/models/tiny/seed43/step250", "words_seen": 5000}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    write_json(budget("results/models/tiny/seed42", 0, []), paths[0])
    write_json(budget("results/models/tiny/mix/x/seed42", 4000, [good]), paths[1])
    rows = write_budget_table(
        ["Baseline", "CD"], paths, "strict-small", tmp_path / "t.csv", tmp_path / "t.md"
    )
    with open(tmp_path / "t.csv", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert list(written[0]) == COLUMNS and [row["experiment"] for row in written] == ["Baseline", "CD"]
    assert written[1]["words_seen"] == "20000" and written[1]["words_seen_synthetic"] == "4000"
    assert written[1]["ancillary"] == "good results/models/tiny/seed43/step250 (5,000 words seen)"
    assert rows[0]["ancillary"] == "" and written[0]["within_limits"] == "True"
    markdown = (tmp_path / "t.md").read_text()
    assert markdown.startswith(
        "Track: strict-small (at most 10,000,000 words of data, 100,000,000 words seen)"
    )
    assert "| CD | 1,000 | 50 | 1,050 | 16,000 | 4,000 | 20,000 | 16.0 | True |" in markdown


def test_a_run_over_the_track_is_marked_and_no_track_marks_nothing(tmp_path):
    path = tmp_path / "a.json"
    write_json(budget("results/models/tiny/seed42", 200_000_000, []), path)
    over = write_budget_table(["Baseline"], [path], "strict-small", tmp_path / "t.csv", tmp_path / "t.md")
    assert over[0]["within_limits"] is False and over[0]["track"] == "strict-small"
    free = write_budget_table(["Baseline"], [path], "none", tmp_path / "t.csv", tmp_path / "t.md")
    assert free[0]["within_limits"] == "" and (tmp_path / "t.md").read_text().startswith("Track: none")
