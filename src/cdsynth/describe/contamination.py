"""Overlap of a training corpus with the BabyLM 2025 evaluation data, as decontamination tools measure it.

A training text that contains evaluation items inflates exactly the gains this project reports, so every
corpus's `stats.json` says how much of the evaluation data it contains. The definition:

- Words: the text lower-cased (Unicode), every punctuation or symbol character (Unicode categories P* and
  S*) deleted, then split on whitespace; empty words drop out. "Don't, Ali!" gives `dont ali`.
- An evaluation text's n-grams are its word n-grams (n = `NGRAM`, 13, by default); a text shorter than n
  words (but not empty) counts as one n-gram, its whole word sequence. A training sample's n-grams never
  span two samples.
- An evaluation item is contaminated when an n-gram of any of its texts occurs in some training sample; a
  training sample is contaminated when it contains an n-gram of some evaluation text.

The items and their texts, per task (`ITEM_FIELDS`): a BLiMP or Supplement row (`sentence_good`,
`sentence_bad`), an EWoK row (Context1/2, Target1/2), an Entity Tracking row (`input_prefix`), a WUG row (its
tab-separated `sentences`) and a distinct Reading sentence (`sentence` of reading_data.csv).

The evaluation n-grams are hashed once to 64-bit keys (about 30 MB for the whole BabyLM data); the corpus
is streamed in record batches of `BATCH_ROWS` rows, and only which evaluation n-grams were found is kept, so
memory does not grow with the corpus. Hashing makes matches exact up to 64-bit collisions.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdsynth.describe.hashing import U64, mix, positions, sorted_unique, word_ids
from cdsynth.describe.measures import BATCH_ROWS, ratio
from cdsynth.io import read_arrow, write_json
from cdsynth.spec.eval_data import task_dir

NGRAM = 13
# The fields of a JSONL row holding an item's texts; WUG's one field holds several, tab-separated.
ITEM_FIELDS = {
    "blimp": ["sentence_good", "sentence_bad"],
    "blimp_supplement": ["sentence_good", "sentence_bad"],
    "ewok": ["Context1", "Context2", "Target1", "Target2"],
    "entity_tracking": ["input_prefix"],
    "wug": ["sentences"],
}
TASKS = [*ITEM_FIELDS, "reading"]
PUNCTUATION = r"[\p{P}\p{S}]"
# The first key of every chain of n-gram hashes (splitmix64's golden ratio); any fixed value would do.
_SEED = U64(0x9E3779B97F4A7C15)


def normalized_words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 word ids laid end to end, words per text) of `texts` under the definition's normalisation."""
    lowered = pc.utf8_lower(pc.fill_null(texts, ""))
    return word_ids(pc.replace_substring_regex(lowered, PUNCTUATION, ""))


def chained_keys(values: np.ndarray, lengths: np.ndarray, longest: int) -> Iterator[tuple]:
    """(size, keys, rows) of the word n-grams of every size 1..`longest` lying inside one row.

    One chain of hashes gives every size: an (L + 1)-gram's key mixes its L-gram prefix's key with its
    last word, so all sizes cost `longest` vector passes.
    """
    rows, local = positions(lengths)
    keys = mix(values ^ _SEED)
    for size in range(1, longest + 1):
        count = len(values) - size + 1
        if count <= 0:
            return
        if size > 1:
            keys = mix(keys[:count] ^ values[size - 1 :])
        inside = local[:count] + size <= lengths[rows[:count]]
        yield size, keys[inside], rows[:count][inside]


def text_keys(texts: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size, key, text) of each evaluation n-gram, as arrays.

    A text's n-grams are all its word n-grams, or its whole word sequence when it is shorter; a text with
    no words has none.
    """
    values, lengths = normalized_words(texts)
    wanted = np.minimum(lengths, n)
    sizes, keys, owners = [], [], []
    for size, size_keys, rows in chained_keys(values, lengths, n):
        keep = wanted[rows] == size
        sizes.append(np.full(int(keep.sum()), size))
        keys.append(size_keys[keep])
        owners.append(rows[keep])
    if not keys:
        return np.empty(0, np.int64), np.empty(0, U64), np.empty(0, np.int64)
    return np.concatenate(sizes), np.concatenate(keys), np.concatenate(owners)


# ----------------------------------------------------------------------------------- evaluation items


def jsonl_items(data_dir: str | os.PathLike, task: str) -> list[list[str]]:
    """Every item of a JSONL task as its list of texts, files in name order."""
    items = []
    for path in sorted(task_dir(data_dir, task).glob("*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        items += [[text for name in ITEM_FIELDS[task] for text in row[name].split("\t")] for row in rows]
    return items


def reading_items(data_dir: str | os.PathLike) -> list[list[str]]:
    """The distinct sentences of the Reading data (one row per word), each one item, in first-seen order."""
    with open(task_dir(data_dir, "reading") / "reading_data.csv", newline="", encoding="utf-8") as handle:
        sentences = dict.fromkeys(row["sentence"] for row in csv.DictReader(handle) if row["sentence"])
    return [[sentence] for sentence in sentences]


def evaluation_items(data_dir: str | os.PathLike) -> dict[str, list[list[str]]]:
    """Task -> its items, each a list of texts."""
    return {task: jsonl_items(data_dir, task) for task in ITEM_FIELDS} | {"reading": reading_items(data_dir)}


@dataclass
class EvalNgrams:
    """The evaluation n-grams, hashed: one entry per (item, n-gram), and per size the sorted distinct keys."""

    n: int
    task_items: dict[str, int]  # task -> its item count; items are numbered task by task in this order
    sizes: np.ndarray  # each entry's n-gram size (the n-gram's words)
    keys: np.ndarray  # each entry's key
    items: np.ndarray  # each entry's item
    distinct: dict[int, np.ndarray]  # size -> sorted distinct keys of that size


def eval_ngrams(data_dir: str | os.PathLike, n: int = NGRAM) -> EvalNgrams:
    """The n-grams of every evaluation item of the BabyLM data in `data_dir` (the config's eval.data_dir)."""
    texts, owners, task_items = [], [], {}
    for task, items in evaluation_items(data_dir).items():
        for number, item in enumerate(items, start=sum(task_items.values())):
            texts += item
            owners += [number] * len(item)
        task_items[task] = len(items)
    sizes, keys, text_of = text_keys(pa.array(texts, pa.string()), n)
    distinct = {int(size): sorted_unique(keys[sizes == size]) for size in np.unique(sizes)}
    return EvalNgrams(n, task_items, sizes, keys, np.asarray(owners, np.int64)[text_of], distinct)


# ------------------------------------------------------------------------------------------ streaming


def shard_texts(paths: Iterable[str | os.PathLike]) -> Iterator[pa.Array]:
    """The `text` column of each shard (memory-mapped), `BATCH_ROWS` rows at a time."""
    for path in paths:
        for batch in read_arrow(path).select(["text"]).to_batches(max_chunksize=BATCH_ROWS):
            yield batch.column(0)


class _Found:
    """Which evaluation n-grams the corpus holds, and how many samples hold one; nothing else is kept."""

    def __init__(self, ngrams: EvalNgrams) -> None:
        self.ngrams = ngrams
        self.found = {size: np.zeros(len(keys), bool) for size, keys in ngrams.distinct.items()}
        self.samples = self.contaminated = 0

    def add(self, texts: pa.Array) -> None:
        values, lengths = normalized_words(texts)
        hit_rows = []
        for size, keys, rows in chained_keys(values, lengths, max(self.found, default=0)):
            if size not in self.found:
                continue
            at, hit = lookup(self.ngrams.distinct[size], keys)
            self.found[size][at[hit]] = True
            hit_rows.append(rows[hit])
        self.samples += len(texts)
        self.contaminated += len(np.unique(np.concatenate(hit_rows))) if hit_rows else 0

    def item_hits(self) -> np.ndarray:
        """Per item, whether one of its n-grams was found."""
        ngrams = self.ngrams
        entry_found = np.zeros(len(ngrams.keys), bool)
        for size, found in self.found.items():
            entries = ngrams.sizes == size
            at, _ = lookup(ngrams.distinct[size], ngrams.keys[entries])
            entry_found[entries] = found[at]
        hits = np.zeros(sum(ngrams.task_items.values()), bool)
        hits[ngrams.items[entry_found]] = True
        return hits


def lookup(distinct: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into the sorted `distinct`, whether it is there) of each key."""
    at = np.minimum(np.searchsorted(distinct, keys), len(distinct) - 1)
    return at, distinct[at] == keys


def overlap(batches: Iterable[pa.Array], ngrams: EvalNgrams) -> dict[str, Any]:
    """The contamination statistics of a corpus given as batches of texts (one text per sample).

    `n`; `samples` and `contaminated_samples`, the samples holding an evaluation n-gram, and their share
    `sample_share`; `items`: per task, the share of its items with an n-gram in the corpus (None: no items).
    """
    found = _Found(ngrams)
    for texts in batches:
        found.add(texts)
    hits = np.split(found.item_hits(), np.cumsum(list(ngrams.task_items.values()))[:-1])
    return {
        "n": ngrams.n,
        "samples": found.samples,
        "contaminated_samples": found.contaminated,
        "sample_share": ratio(found.contaminated, found.samples),
        "items": {task: ratio(int(h.sum()), len(h)) for task, h in zip(ngrams.task_items, hits)},
    }


def corpus_contamination(
    paths: Iterable[str | os.PathLike], data_dir: str | os.PathLike, n: int = NGRAM
) -> dict[str, Any]:
    """The contamination statistics (`overlap`) of the shards at `paths` against the data in `data_dir`."""
    return overlap(shard_texts(paths), eval_ngrams(data_dir, n))


def describe_split(
    split: str | os.PathLike, data_dir: str | os.PathLike, out: str | os.PathLike, n: int = NGRAM
) -> dict:
    """Write a real corpus split's statistics to `out`: its samples (rows) and their contamination."""
    contamination = corpus_contamination([split], data_dir, n)
    stats = {"samples": contamination["samples"], "contamination": contamination}
    write_json(stats, out)
    return stats
