"""The Corpora section's statistics table: contamination columns, and the real train split's row."""

from __future__ import annotations

import csv

from cdsynth.io import write_json
from cdsynth.report.corpora import REAL_SPLIT, statistics_row, statistics_rows, write_statistics_table

CONTAMINATION = {
    "n": 13,
    "samples": 10,
    "contaminated_samples": 2,
    "sample_share": 0.2,
    "items": {"blimp": 0.5, "ewok": None},
}
SYNTHETIC = {
    "samples": 10,
    "generated_tokens": 40,
    "distinct_tokens": {"2": 0.75},
    "contamination": CONTAMINATION,
}


def test_a_corpus_row_holds_its_contamination_and_the_real_split_row_only_that(tmp_path):
    write_json(SYNTHETIC, tmp_path / "cd" / "stats.json")
    [synthetic] = statistics_rows({"cd": tmp_path / "cd"})
    real = statistics_row(REAL_SPLIT, {"samples": 10, "contamination": CONTAMINATION})
    for row in (synthetic, real):
        assert row["samples holding an evaluation n-gram"] == 0.2
        assert (row["blimp items found"], row["ewok items found"]) == (0.5, None)
    assert synthetic["distinct-2 (tokens)"] == 0.75
    assert real["generated tokens"] is None and real["distinct-2 (tokens)"] is None

    write_statistics_table([real, synthetic], tmp_path / "statistics.csv")
    with open(tmp_path / "statistics.csv", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [row["corpus"] for row in written] == [REAL_SPLIT, "cd"]
    assert written[0]["blimp items found"] == written[1]["blimp items found"] == "0.5"
