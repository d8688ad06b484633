"""Corpus statistics: known answers on hand-made shards, a naive cross-check, hash stability, real text."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cdsynth.describe.measures import corpus_statistics, reference_ngrams
from cdsynth.errors import DataError
from cdsynth.io import write_arrow
from cdsynth.synth.manifest import SHARD_SCHEMA

BOS, EOS = 1, 2


def shard(path: Path, ids: list[list[int]], texts: list[str] | None = None, prefix=None) -> Path:
    """A shard in the corpus format; texts default to the ids written as words."""
    texts = texts if texts is not None else [" ".join(f"w{i}" for i in row) for row in ids]
    table = pa.table(
        {
            "input_ids": pa.array(ids, pa.list_(pa.int32())),
            "text": pa.array(texts, pa.string()),
            "prompt_id": [f"p{i}" for i in range(len(ids))],
            "continuation": pa.array([0] * len(ids), pa.int32()),
            "prefix_len": pa.array(prefix or [0] * len(ids), pa.int32()),
        },
        schema=SHARD_SCHEMA,
    )
    write_arrow(table, path)
    return path


def stats_of(tmp_path: Path, ids: list[list[int]], **kwargs) -> dict:
    return corpus_statistics([shard(tmp_path / "shard-00000.arrow", ids)], **kwargs)


def test_distinct_ngrams_of_a_short_sample(tmp_path):
    stats = stats_of(tmp_path, [[5, 6, 5, 6]])
    assert stats["distinct_tokens"] == {"1": 0.5, "2": round(2 / 3, 6), "3": 1.0}
    assert stats["distinct_words"] == {"1": 0.5, "2": round(2 / 3, 6), "3": 1.0}
    assert (stats["samples"], stats["generated_tokens"], stats["mean_sample_tokens"]) == (1, 4, 4.0)


def test_ngrams_never_cross_a_sample_boundary(tmp_path):
    # Crossing would add (8, 7): 2 distinct of 3; within samples it is 1 distinct of 2.
    stats = stats_of(tmp_path, [[7, 8], [7, 8]])
    assert stats["distinct_tokens"] == {"1": 0.5, "2": 0.5, "3": None}
    assert stats["distinct_words"] == {"1": 0.5, "2": 0.5, "3": None}


def test_the_authors_diversity_runs_across_rows_and_keeps_the_prompt(tmp_path):
    """Their score joins the rows' words in order, prompt included: "a b" + "a b a" gives the words
    a b a b a, whose 2-grams (ab, ba, ab, ba) are 2 distinct of 4, 3-grams 2 of 3, 4-grams 2 of 2."""
    path = shard(tmp_path / "shard-00000.arrow", [[1, 5], [1, 5, 6]], texts=["a b", "a b a"], prefix=[1, 1])
    diversity = corpus_statistics([path])["authors_diversity"]
    assert diversity == {
        "words": 5,
        "distinct_2": 0.5,
        "distinct_3": round(2 / 3, 6),
        "distinct_4": 1.0,
        "product": round(0.5 * 2 / 3, 6),
    }


def test_the_authors_diversity_stops_at_100k_words_and_reads_shards_in_order(tmp_path):
    rows = [" ".join(f"w{(i * 7 + k) % 50}" for k in range(1000)) for i in range(60)]  # 60K words a shard
    paths = [
        shard(tmp_path / f"shard-0000{k}.arrow", [[1]] * 60, texts=rows if k == 0 else ["x y " * 500] * 60)
        for k in range(3)
    ]
    diversity = corpus_statistics(paths)["authors_diversity"]
    words = " ".join(rows).split() + ["x", "y"] * 20_000  # the first 40K words of the second shard
    assert diversity["words"] == 100_000
    expected = {n: len(set(zip(*(words[k:] for k in range(n))))) / (100_000 - n + 1) for n in (2, 3, 4)}
    assert diversity["distinct_2"] == round(expected[2], 6)
    assert diversity["product"] == round(expected[2] * expected[3] * expected[4], 6)


def test_repetition_share_and_longest_repeat(tmp_path):
    stats = stats_of(tmp_path, [[1, 2, 3, 4, 1, 2, 3, 4, 9], [5, 5, 5, 5, 5], [7, 8, 9]])
    # 1/6 and 1/2 (two 5555 windows); the 3-token row has no 4-gram and is left out of that mean.
    assert stats["repetition"]["repeated_4gram_share"] == round((1 / 6 + 1 / 2) / 2, 6)
    # 1234 twice; 5555 twice (overlapping); nothing in 7 8 9.
    assert stats["repetition"]["longest_repeat_max"] == 4
    assert stats["repetition"]["longest_repeat_mean"] == round(8 / 3, 6)


def test_only_ids_after_prefix_len_are_generated(tmp_path):
    path = shard(tmp_path / "s.arrow", [[BOS, 10, 11, 12, 13], [BOS, 10, 14]], prefix=[3, 3])
    stats = corpus_statistics([path], vocab_size=20)
    assert stats["generated_tokens"] == 2
    assert stats["distinct_tokens"]["1"] == 1.0
    assert stats["vocab_coverage"] == round(2 / 20, 6)
    assert stats["repetition"]["longest_repeat_mean"] == 0.0


def test_documents_split_on_generated_bos_and_eos(tmp_path):
    ids = [[EOS, 5, 6, EOS, EOS, 7, BOS], [5, 6], [EOS]]
    stats = stats_of(tmp_path, ids, bos_id=BOS, eos_id=EOS)
    assert stats["documents_per_sample"] == 1.0  # (5 6 | 7), (5 6), () over 3 samples
    assert stats["eos_per_1k_tokens"] == round(4 / 10 * 1000, 6)
    assert stats["bos_per_1k_tokens"] == 100.0
    plain = stats_of(tmp_path, ids)
    assert plain["documents_per_sample"] == 1.0  # each non-empty sample is one piece
    assert plain["eos_per_1k_tokens"] is None and plain["bos_per_1k_tokens"] is None


def test_vocab_coverage_and_ids_outside_the_vocab(tmp_path):
    assert stats_of(tmp_path, [[0, 1], [2, 3, 3]], vocab_size=8)["vocab_coverage"] == 0.5
    assert stats_of(tmp_path, [[0, 1]])["vocab_coverage"] is None
    with pytest.raises(DataError, match="token id 9 is outside the vocabulary"):
        stats_of(tmp_path, [[0, 9]], vocab_size=8)


def test_copy_rate_against_reference_text(tmp_path):
    reference = ["one two three four five six seven eight nine", "alpha beta"]
    ngrams = reference_ngrams(reference)
    assert ngrams.dtype == np.uint64 and len(ngrams) == 2 and np.all(ngrams[:-1] < ngrams[1:])
    text = "one two three four five six seven eight nine ten"  # 3 word 8-grams, the first 2 copied
    path = shard(tmp_path / "s.arrow", [[3] * 10], [text])
    assert corpus_statistics([path], reference_texts=reference)["copy_rate_reference"] == round(2 / 3, 6)
    assert corpus_statistics([path])["copy_rate_reference"] is None


def test_copy_rate_against_the_rows_own_prompt_without_the_kept_prompt(tmp_path):
    prompts = {"p0": "a b c d e f g h", "p1": "one two three four five six seven eight"}
    # Row 0 kept its prompt, then copied it; row 1 kept its prompt and wrote 8 new words; row 2 did not
    # keep its prompt (prefix_len 0) and copied row 0's prompt, which is not its own.
    texts = [
        "a b c d e f g h a b c d e f g h x",
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen",
        "a b c d e f g h",
    ]
    path = shard(tmp_path / "s.arrow", [[BOS, 3, 4], [BOS, 3, 4], [5]], texts, prefix=[2, 2, 0])
    stats = corpus_statistics([path], prompt_texts=lambda row: prompts.get(row["prompt_id"], "q r"))
    # Generated 8-grams: row 0 "a..h" (found) and "b..x"; row 1 one of 8 new words; row 2 "a..h" (not
    # its prompt's): 1 found of 4.
    assert stats["copy_rate_prompt"] == 0.25
    # Generated words: 9 + 8 + 8 = 25, of which a..h twice: 17 distinct.
    assert stats["distinct_words"]["1"] == round(17 / 25, 6)
    without = corpus_statistics([path])
    assert without["copy_rate_prompt"] is None
    assert without["distinct_words"]["1"] == round(25 / 41, 6)  # the kept prompts count as words


def test_prompt_texts_gets_the_row_as_a_dict(tmp_path):
    seen = []
    path = shard(tmp_path / "s.arrow", [[BOS, 3, 4]], ["x y"], prefix=[2])
    corpus_statistics([path], prompt_texts=lambda row: seen.append(row) or "x")
    assert seen == [
        {"input_ids": [BOS, 3, 4], "text": "x y", "prompt_id": "p0", "continuation": 0, "prefix_len": 2}
    ]


def test_a_text_only_corpus_has_word_statistics_only(tmp_path):
    path = tmp_path / "text.arrow"
    write_arrow(pa.table({"text": ["the cat saw the cat", None, "a dog"]}), path)
    stats = corpus_statistics([path], bos_id=BOS, eos_id=EOS, vocab_size=10)
    assert stats["samples"] == 3
    for key in ("generated_tokens", "distinct_tokens", "repetition", "documents_per_sample"):
        assert stats[key] is None
    assert stats["vocab_coverage"] is None and stats["eos_per_1k_tokens"] is None
    assert stats["distinct_words"] == {"1": round(5 / 7, 6), "2": 0.8, "3": 1.0}
    json.dumps(stats)


def test_shards_that_disagree_on_input_ids_are_refused(tmp_path):
    text_only = tmp_path / "text.arrow"
    write_arrow(pa.table({"text": ["a b"]}), text_only)
    with pytest.raises(DataError, match="lacks an `input_ids` column"):
        corpus_statistics([shard(tmp_path / "ids.arrow", [[3]]), text_only])


def test_splitting_rows_over_shards_and_batches_changes_nothing(tmp_path):
    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 12, size=rng.integers(0, 30)).tolist() for _ in range(2500)]
    one = corpus_statistics([shard(tmp_path / "one.arrow", ids)], bos_id=BOS, eos_id=EOS)
    parts = [shard(tmp_path / f"part{i}.arrow", ids[i * 700 : (i + 1) * 700]) for i in range(4)]
    assert corpus_statistics(parts, bos_id=BOS, eos_id=EOS) == one


def naive(rows: list[list[int]]) -> dict:
    """The token statistics by their definitions, with Python sets."""

    def grams(row, n):
        return [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]

    def longest(row):
        length = 0
        while len(set(grams(row, length + 1))) < len(grams(row, length + 1)):
            length += 1
        return length

    distinct = {}
    for n in (1, 2, 3):
        total = [g for row in rows for g in grams(row, n)]
        distinct[str(n)] = round(len(set(total)) / len(total), 6)
    shares = [1 - len(set(grams(r, 4))) / len(grams(r, 4)) for r in rows if len(r) >= 4]
    return {
        "distinct_tokens": distinct,
        "repeated_4gram_share": round(sum(shares) / len(shares), 6),
        "longest": [longest(r) for r in rows],
    }


def test_token_statistics_match_a_naive_implementation(tmp_path):
    rng = np.random.default_rng(1)
    # A small vocabulary and a planted copy make long repeats, as a degenerate sampler would.
    rows = [rng.integers(3, 9, size=rng.integers(0, 120)).tolist() for _ in range(60)]
    rows[0] = rows[0] + list(range(20, 60)) + rows[0][:5] + list(range(20, 60))
    stats = stats_of(tmp_path, rows)
    expected = naive(rows)
    assert stats["distinct_tokens"] == expected["distinct_tokens"]
    assert stats["repetition"]["repeated_4gram_share"] == expected["repeated_4gram_share"]
    assert stats["repetition"]["longest_repeat_max"] == max(expected["longest"]) >= 40
    assert stats["repetition"]["longest_repeat_mean"] == round(np.mean(expected["longest"]), 6)


REFERENCE = ["the quick brown fox jumps over the lazy dog again and again", "lorem ipsum dolor sit amet"]
DETERMINISM = """
import json, sys
from cdsynth.describe.measures import corpus_statistics, reference_ngrams
reference = json.loads(sys.argv[2])
stats = corpus_statistics(
    [sys.argv[1]], bos_id=1, eos_id=2, vocab_size=50, reference_texts=reference,
    prompt_texts=lambda row: "the quick brown fox",
)
print(json.dumps({"stats": stats, "ngrams": reference_ngrams(reference).tolist()}))
"""


def test_results_and_hashes_are_the_same_in_every_process(tmp_path):
    texts = ["the quick brown fox jumps over the lazy dog again and again", "the lazy dog sleeps"]
    path = shard(tmp_path / "s.arrow", [[BOS, 3, 4, 5, 3, 4, 5, EOS], [BOS, 6, 7]], texts, prefix=[2, 1])

    def here() -> dict:
        return corpus_statistics(
            [path],
            bos_id=1,
            eos_id=2,
            vocab_size=50,
            reference_texts=REFERENCE,
            prompt_texts=lambda row: "the quick brown fox",
        )

    assert here() == here()
    # Python salts str hashes per process; the word and n-gram hashes must not depend on it.
    runs = [
        subprocess.run(
            [sys.executable, "-c", DETERMINISM, str(path), json.dumps(REFERENCE)],
            env=os.environ | {"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1]
    assert json.loads(runs[0]) == {"stats": here(), "ngrams": reference_ngrams(REFERENCE).tolist()}
    assert len(json.loads(runs[0])["ngrams"]) == 5  # 12 words: 5 distinct 8-grams


def test_reference_ngram_hashes_are_pinned():
    """Saved hashes stay comparable: these values change only if the hashing itself changes."""
    assert reference_ngrams(["a b c d e f g h"]).tolist() == [5389136858794175831]
    assert reference_ngrams(["a  b\tc", ""], n=2).tolist() == [
        1402924243970648704,
        11507059905334137352,
    ]


def real_stories(corpus_dir: Path, count: int) -> list[str]:
    """The first `count` paragraphs of the TinyStories validation head, as written."""
    path = corpus_dir / "tinystories" / "tinystories_v1_valid_head.txt.xz"
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        paragraphs = [line.strip() for line in handle if len(line.split()) >= 30]
    return paragraphs[:count]


def test_a_shard_of_real_english(tmp_path, corpus_dir):
    """Rows whose prompt is a paragraph's first 12 words and whose continuation is the rest of it.

    Ids are the text's UTF-8 bytes (+3, after BOS 1 and EOS 2), a real, invertible tokenization, so
    `text` is exactly input_ids[1:] decoded, as `generate_shard` writes it.
    """
    stories = real_stories(corpus_dir, 12)
    prompts = [" ".join(story.split()[:12]) for story in stories]
    ids = [[BOS, *(b + 3 for b in story.encode()), EOS] for story in stories]
    texts = [story + "</s>" for story in stories]  # the generated EOS decodes to its token text
    prefix = [1 + len(prompt.encode()) for prompt in prompts]
    path = shard(tmp_path / "shard-00000.arrow", ids, texts, prefix)
    stats = corpus_statistics(
        [path],
        bos_id=BOS,
        eos_id=EOS,
        vocab_size=259,
        reference_texts=stories,
        prompt_texts=lambda row: prompts[int(row["prompt_id"][1:])],
    )
    generated = [row[p:] for row, p in zip(ids, prefix)]
    assert stats["generated_tokens"] == sum(map(len, generated))
    assert stats["documents_per_sample"] == 1.0 and stats["bos_per_1k_tokens"] == 0.0
    assert stats["eos_per_1k_tokens"] == round(12 / stats["generated_tokens"] * 1000, 6)
    expected = naive(generated)
    assert stats["distinct_tokens"] == expected["distinct_tokens"]
    assert stats["repetition"]["repeated_4gram_share"] == expected["repeated_4gram_share"]
    assert stats["repetition"]["longest_repeat_mean"] == round(np.mean(expected["longest"]), 6)
    assert stats["vocab_coverage"] == round(len({i for row in generated for i in row}) / 259, 6)
    # English letters repeat: bigrams of bytes are far from distinct, byte 8-grams ("the ") repeat.
    assert (
        stats["distinct_tokens"]["1"] < 0.05 < stats["distinct_tokens"]["2"] < stats["distinct_tokens"]["3"]
    )
    assert stats["repetition"]["longest_repeat_max"] >= 8
    # Words: each row's words after its 12 prompt words (the last fused with "</s>").
    words = [(s + "</s>").split()[12:] for s in stories]
    unigrams = [w for row in words for w in row]
    assert stats["distinct_words"]["1"] == round(len(set(unigrams)) / len(unigrams), 6)
    eights = [tuple(row[i : i + 8]) for row in words for i in range(len(row) - 7)]
    source = {tuple(s.split()[i : i + 8]) for s in stories for i in range(len(s.split()) - 7)}
    # The continuation is the reference story itself, except the 8-grams that end in "word</s>".
    assert stats["copy_rate_reference"] == round(sum(g in source for g in eights) / len(eights), 6)
    assert 0.9 < stats["copy_rate_reference"] < 1.0
    assert stats["copy_rate_prompt"] == 0.0  # 12 prompt words hold 5 8-grams, none repeated later
