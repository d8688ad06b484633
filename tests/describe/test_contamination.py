"""Overlap with the evaluation data: word n-grams found, per-task item shares, bounded memory, stats.json."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import write_jsonl, write_reading

from cdsynth.describe.contamination import (
    TASKS,
    corpus_contamination,
    describe_split,
    eval_ngrams,
    normalized_words,
    overlap,
)
from cdsynth.describe.description import describe_corpus
from cdsynth.describe.hashing import word_ids
from cdsynth.describe.measures import BATCH_ROWS
from cdsynth.io import read_json, write_arrow
from cdsynth.spec.eval_data import TASK_DIRS

# 23 words; 13 of them in a row (from "Box 0" to the second "contains") are planted in the corpus below.
PREFIX_FOUND = (
    "Box 0 contains the blue card and the small tissue, Box 1 contains the small map and the big jacket. "
    "Box 0 contains"
)
# 12 of its words in a row are in the corpus: one short of an n-gram.
PREFIX_MISSED = (
    "Box 2 contains the red shirt and the yellow coat and the blue jacket, Box 3 contains nothing."
)
SHORT_FOUND = "Who should Derek hug after shocking Richard?"  # 7 words: the whole sentence is its n-gram
SHORT_MISSED = "Who should Derek hug Richard after shocking?"
# 15 words, the first 11 of them in the corpus.
READING_MISSED = "Yesterday box 0 contains the blue card and the small tissue, she said, and left."
CORPUS = [
    # PREFIX_FOUND's 13-gram, with other case and punctuation.
    "Yesterday BOX 0 CONTAINS the blue card AND the small tissue; box 1 contains the small map!",
    # PREFIX_MISSED's first 12 words, then another word.
    "box 2 contains the red shirt and the yellow coat and the green hat",
    # SHORT_FOUND whole inside a sample; SHORT_MISSED only in part.
    "And who should Derek hug after shocking Richard, she asked. Who should Derek hug Richard?",
    "A sample with none of it.",
]


def blimp_row(good: str, bad: str) -> dict:
    return {"sentence_good": good, "sentence_bad": bad, "UID": "adjunct_island"}


def ewok_row(target: str) -> dict:
    return {
        "Domain": "agent-properties",
        "Context1": "Ali is in the bakery.",
        "Context2": "Ali is out.",
        "Target1": target,
        "Target2": "Ali doubts that the candle is in the bakery.",
    }


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    """The official folder layout with 2-3 items per task."""
    root = tmp_path / "eval"
    write_jsonl(
        root / TASK_DIRS["blimp"] / "adjunct_island.jsonl",
        [
            blimp_row(SHORT_FOUND, "Who Derek should hug?"),
            blimp_row("Ali sees it.", SHORT_MISSED),
            blimp_row("Nothing here at all.", "Here at nothing all."),
        ],
    )
    write_jsonl(
        root / TASK_DIRS["blimp_supplement"] / "hypernym.jsonl", [blimp_row("A sample without any", "x")]
    )
    write_jsonl(
        root / TASK_DIRS["ewok"] / "agent-properties.jsonl",
        [ewok_row("Ali believes that the candle is in the bakery."), ewok_row("She asked.")],
    )
    write_jsonl(
        root / TASK_DIRS["entity_tracking"] / "regular.jsonl",
        [
            {"input_prefix": text, "options": ["a", "b"], "numops": 0}
            for text in (PREFIX_FOUND, PREFIX_MISSED)
        ],
    )
    write_jsonl(
        root / TASK_DIRS["wug"] / "wug_adj_nominalization.jsonl",
        [{"sentences": "Make a noun: blicky. blickiness\tMake a noun: blicky. blickity", "ratio": 0.5}] * 2,
    )
    write_reading(
        root / TASK_DIRS["reading"] / "reading_data.csv",
        [
            [0, "Arthur placed", "the", "Arthur placed the bars on the counter."],
            [1, "Arthur placed the", "bars", "Arthur placed the bars on the counter."],
            [2, "Yesterday", "box", READING_MISSED],
        ],
    )
    return root


def shard(path: Path, texts: list[str]) -> Path:
    write_arrow(pa.table({"text": pa.array(texts, pa.string())}), path)
    return path


def test_words_are_lower_cased_and_stripped_of_punctuation():
    ids, lengths = normalized_words(pa.array(["Don't, ALI!  (café) -- ok", None]))
    expected, _ = word_ids(pa.array(["dont ali café ok"]))
    assert lengths.tolist() == [4, 0]
    assert ids.tolist() == expected.tolist()


def test_an_item_is_found_by_an_n_gram_across_case_and_punctuation_and_not_by_one_word_less(eval_dir):
    stats = overlap([pa.array(CORPUS)], eval_ngrams(eval_dir))
    # The first sample holds PREFIX_FOUND's 13-gram, the third SHORT_FOUND whole.
    assert stats["n"] == 13
    assert (stats["samples"], stats["contaminated_samples"], stats["sample_share"]) == (4, 2, 0.5)
    assert stats["items"]["entity_tracking"] == 0.5  # PREFIX_FOUND; PREFIX_MISSED's 12 words are not enough


def test_an_item_shorter_than_n_is_found_only_whole(eval_dir):
    items = overlap([pa.array(CORPUS)], eval_ngrams(eval_dir))["items"]
    # Row 1 (SHORT_FOUND) is found; row 2's SHORT_MISSED is in the corpus only without its last word.
    assert items["blimp"] == round(1 / 3, 6)


def test_the_shares_per_task_on_a_tiny_evaluation_folder(eval_dir, tmp_path):
    paths = [
        shard(tmp_path / "shard-00000.arrow", CORPUS[:2]),
        shard(tmp_path / "shard-00001.arrow", CORPUS[2:]),
    ]
    stats = corpus_contamination(paths, eval_dir)
    assert stats == {
        "n": 13,
        "samples": 4,
        "contaminated_samples": 2,
        "sample_share": 0.5,
        "items": {
            "blimp": round(1 / 3, 6),
            "blimp_supplement": 0.0,
            "ewok": 0.5,  # "She asked", a target shorter than n, whole in the 3rd sample
            "entity_tracking": 0.5,
            "wug": 0.0,
            "reading": 0.0,  # 2 distinct sentences; READING_MISSED's first 11 words are not enough
        },
    }


def test_a_smaller_n_finds_more(eval_dir):
    stats = overlap([pa.array(CORPUS)], eval_ngrams(eval_dir, n=5))
    assert stats["items"]["entity_tracking"] == 1.0
    assert stats["items"]["reading"] == 0.5  # READING_MISSED's first 5 words are in the 1st sample
    assert stats["contaminated_samples"] == 3


def documents(count: int, planted: str, every: int):
    """`count` generated documents in record batches, `planted` in every `every`-th; none kept."""
    rng = np.random.default_rng(0)
    vocabulary = np.array([f"w{k}" for k in range(500)])
    for start in range(0, count, BATCH_ROWS):
        rows = min(BATCH_ROWS, count - start)
        words = vocabulary[rng.integers(0, len(vocabulary), (rows, 12))]
        texts = [" ".join(row) for row in words]
        for k in range(-start % every, rows, every):
            texts[k] = planted
        yield pa.array(texts, pa.string())


def peak_memory(count: int, ngrams) -> tuple[int, dict]:
    tracemalloc.start()
    try:
        stats = overlap(documents(count, PREFIX_FOUND, every=1000), ngrams)
        return tracemalloc.get_traced_memory()[1], stats
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_corpus(eval_dir):
    ngrams = eval_ngrams(eval_dir)
    small_peak, small = peak_memory(20_000, ngrams)
    large_peak, large = peak_memory(200_000, ngrams)
    assert (small["contaminated_samples"], large["contaminated_samples"]) == (20, 200)
    assert large["samples"] == 200_000
    # The 200K documents' 2.4M word hashes alone would take 19 MB; a batch's arrays take well under 1 MB.
    assert large_peak < 1.1 * small_peak + 256 * 1024
    assert large_peak < 8 * 2**20


@pytest.fixture(scope="module")
def babylm_eval(shared_data: Path) -> Path:
    return shared_data / "babylm2025_eval"


def test_the_real_train_split_gets_its_statistics(prepared, babylm_eval, tmp_path):
    stats = describe_split(prepared["corpus"] / "train.arrow", babylm_eval, tmp_path / "train_stats.json")
    assert read_json(tmp_path / "train_stats.json") == stats
    contamination = stats["contamination"]
    assert contamination["samples"] == stats["samples"] > 0
    assert 0 <= contamination["contaminated_samples"] <= stats["samples"]
    assert sorted(contamination["items"]) == sorted(TASKS)
    assert all(0 <= share <= 1 for share in contamination["items"].values())


def test_a_synthetic_corpus_records_its_contamination_in_stats_and_card(
    synthetic_corpus, micro_run, babylm_eval, tmp_path
):
    corpus = shutil.copytree(synthetic_corpus, tmp_path / "corpus")
    stats = describe_corpus(corpus, micro_run / "step40", eval_data=babylm_eval)
    contamination = read_json(corpus / "stats.json")["contamination"]
    assert contamination == stats["contamination"]
    assert contamination["samples"] == stats["samples"] == 40
    assert sorted(contamination["items"]) == sorted(TASKS)
    card = (corpus / "README.md").read_text()
    for key in ["n", "samples", "contaminated_samples", "sample_share", *(f"items.{t}" for t in TASKS)]:
        assert f"| `contamination.{key}` |" in card
