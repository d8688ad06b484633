"""Statistics of a synthetic corpus: diversity, repetition, document structure and copying.

The shards are read one at a time and each in record batches of at most `BATCH_ROWS` rows, so memory holds
one batch's numpy arrays plus the corpus-wide sets of distinct n-gram hashes (8 bytes per distinct n-gram),
never every row as Python lists. Only numpy and pyarrow are used: the statistics of a 100M-token corpus
need no tokenizer and no model.

Everything is deterministic across processes (`cdsynth.describe.hashing`), so `reference_ngrams` gives the
same array in every run and on every machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdsynth.describe.hashing import (
    U64,
    DistinctSet,
    WindowHashes,
    longest_repeats,
    ngram_keys,
    positions,
    repeats_per_row,
    word_ids,
)
from cdsynth.errors import DataError
from cdsynth.io import read_arrow

# Rows per record batch: the per-sample sort keys keep the row in their top 10 bits (`hashing.ROW_SHIFT`).
BATCH_ROWS = 1024
# Word n-grams whose copying is measured (a verbatim span of 8 words is rarely a coincidence).
COPY_N = 8
DISTINCT_ORDERS = (1, 2, 3)
REPEAT_N = 4
# The authors' diversity score (`evals/diversity_score.py`): the product of distinct-2, -3 and -4 over the
# first 100K words of the corpus's text.
AUTHORS_DIVERSITY_WORDS = 100_000
AUTHORS_DIVERSITY_ORDERS = (2, 3, 4)


def reference_ngrams(texts: Iterable[str], n: int = COPY_N) -> np.ndarray:
    """Sorted unique uint64 hashes of the word n-grams of `texts` (n-grams never span two texts).

    The same hashing as `corpus_statistics` uses for its copy rates, and the same in every process, so the
    array can be saved and compared later.
    """
    distinct = DistinctSet()
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == BATCH_ROWS:
            distinct.add(ngram_keys(*word_ids(pa.array(batch, pa.string())), n)[0])
            batch = []
    if batch:
        distinct.add(ngram_keys(*word_ids(pa.array(batch, pa.string())), n)[0])
    return distinct.values()


# ---------------------------------------------------------------------------------------- tallies


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return None if denominator == 0 else round(float(numerator) * scale / float(denominator), 6)


class _NgramTally:
    """Distinct / total n-grams of orders 1..3 over the whole corpus."""

    def __init__(self) -> None:
        self.sets = {n: DistinctSet() for n in DISTINCT_ORDERS}
        self.totals = dict.fromkeys(DISTINCT_ORDERS, 0)

    def add(self, values: np.ndarray, lengths: np.ndarray) -> None:
        for n in DISTINCT_ORDERS:
            keys, _ = ngram_keys(values, lengths, n)
            self.sets[n].add(keys)
            self.totals[n] += len(keys)

    def result(self) -> dict[str, float | None]:
        return {str(n): ratio(len(self.sets[n]), self.totals[n]) for n in DISTINCT_ORDERS}


class _TokenTally:
    """Token statistics of the generated ids, batch by batch."""

    def __init__(self, bos_id: int | None, eos_id: int | None) -> None:
        self.bos_id, self.eos_id = bos_id, eos_id
        self.ngrams = _NgramTally()
        self.samples = self.tokens = self.bos = self.eos = self.documents = 0
        self.share_sum, self.share_samples = 0.0, 0
        self.longest_sum, self.longest_max = 0, 0

    def add(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        values = ids.astype(U64)
        self.samples += len(lengths)
        self.tokens += int(lengths.sum())
        self.ngrams.add(values, lengths)
        self._add_repetition(values, lengths)
        self._add_boundaries(ids, lengths)

    def _add_repetition(self, values: np.ndarray, lengths: np.ndarray) -> None:
        hashes = WindowHashes(values)
        rows, local = positions(lengths)
        first = np.flatnonzero(local + REPEAT_N <= lengths[rows])
        grams = np.bincount(rows[first], minlength=len(lengths))
        repeats = repeats_per_row(hashes.keys(first, REPEAT_N), rows[first], len(lengths))
        has = grams > 0
        self.share_sum += float((repeats[has] / grams[has]).sum())
        self.share_samples += int(has.sum())
        longest = longest_repeats(hashes, lengths)
        self.longest_sum += int(longest.sum())
        self.longest_max = max(self.longest_max, int(longest.max(initial=0)))

    def _add_boundaries(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        marks = [m for m in (self.bos_id, self.eos_id) if m is not None]
        self.bos += int((ids == self.bos_id).sum()) if self.bos_id is not None else 0
        self.eos += int((ids == self.eos_id).sum()) if self.eos_id is not None else 0
        boundary = np.isin(ids, marks)
        _, local = positions(lengths)
        after_boundary = local == 0
        after_boundary[1:] |= boundary[:-1]
        self.documents += int((~boundary & after_boundary).sum())

    def result(self, vocab_size: int | None) -> dict[str, Any]:
        distinct_ids = len(self.ngrams.sets[1])
        return {
            "generated_tokens": self.tokens,
            "mean_sample_tokens": ratio(self.tokens, self.samples),
            "distinct_tokens": self.ngrams.result(),
            "repetition": {
                "repeated_4gram_share": ratio(self.share_sum, self.share_samples),
                "longest_repeat_mean": ratio(self.longest_sum, self.samples),
                "longest_repeat_max": self.longest_max,
            },
            "documents_per_sample": ratio(self.documents, self.samples),
            "eos_per_1k_tokens": None if self.eos_id is None else ratio(self.eos, self.tokens, 1000),
            "bos_per_1k_tokens": None if self.bos_id is None else ratio(self.bos, self.tokens, 1000),
            "vocab_coverage": None if vocab_size is None else ratio(distinct_ids, vocab_size),
        }


def _common_prefix(
    words: np.ndarray, lengths: np.ndarray, prompt: np.ndarray, prompt_lengths: np.ndarray
) -> np.ndarray:
    """Per row, how many leading words of the row equal the leading words of its prompt."""
    rows, local = positions(lengths)
    prompt_starts = np.cumsum(prompt_lengths) - prompt_lengths
    inside = local < prompt_lengths[rows]
    same = np.zeros(len(words), bool)
    same[inside] = words[inside] == prompt[prompt_starts[rows[inside]] + local[inside]]
    mismatch = np.flatnonzero(~same)
    first = np.ones(len(mismatch), bool)
    first[1:] = rows[mismatch[1:]] != rows[mismatch[:-1]]
    shared = lengths.copy()
    shared[rows[mismatch[first]]] = local[mismatch[first]]
    return shared


def _pairs_found(keys: np.ndarray, rows: np.ndarray, wanted: np.ndarray, wanted_rows: np.ndarray) -> int:
    """How many (row, key) pairs of the first set also occur among the (row, key) pairs of the second."""
    all_keys = np.concatenate([wanted, keys])
    all_rows = np.concatenate([wanted_rows, rows])
    is_query = np.concatenate([np.zeros(len(wanted), bool), np.ones(len(keys), bool)])
    order = np.lexsort((is_query, all_keys, all_rows))
    k, r, q = all_keys[order], all_rows[order], is_query[order]
    starts = np.concatenate([[True], (k[1:] != k[:-1]) | (r[1:] != r[:-1])]) if len(k) else np.empty(0, bool)
    group = np.cumsum(starts) - 1
    group_has_wanted = ~q[starts]
    return int(group_has_wanted[group[q]].sum())


class _WordTally:
    """Word statistics of the generated text, batch by batch."""

    def __init__(self, reference: np.ndarray | None) -> None:
        self.reference = reference
        self.ngrams = _NgramTally()
        self.reference_found = self.reference_total = 0
        self.prompt_found = self.prompt_total = 0

    def add(self, texts: pa.Array, prefix_len: np.ndarray, prompts: list[str] | None) -> None:
        words, lengths = word_ids(texts)
        if prompts is not None:
            prompt, prompt_lengths = word_ids(pa.array([p or "" for p in prompts], pa.string()))
            shared = _common_prefix(words, lengths, prompt, prompt_lengths)
            shared[prefix_len <= 0] = 0
            rows, local = positions(lengths)
            words, lengths = words[local >= shared[rows]], lengths - shared
        self.ngrams.add(words, lengths)
        keys, rows = ngram_keys(words, lengths, COPY_N)
        if self.reference is not None and len(self.reference):
            at = np.minimum(np.searchsorted(self.reference, keys), len(self.reference) - 1)
            self.reference_found += int((self.reference[at] == keys).sum())
        self.reference_total += len(keys)
        if prompts is not None:
            wanted, wanted_rows = ngram_keys(prompt, prompt_lengths, COPY_N)
            self.prompt_found += _pairs_found(keys, rows, wanted, wanted_rows)
            self.prompt_total += len(keys)

    def result(self, with_prompts: bool) -> dict[str, Any]:
        return {
            "distinct_words": self.ngrams.result(),
            "copy_rate_reference": None
            if self.reference is None
            else ratio(self.reference_found, self.reference_total),
            "copy_rate_prompt": ratio(self.prompt_found, self.prompt_total) if with_prompts else None,
        }


class _AuthorsDiversity:
    """The authors' diversity score: the first `AUTHORS_DIVERSITY_WORDS` whitespace words of the `text`
    column in corpus order (prompt included, as their saved text has it), n-grams running across rows."""

    def __init__(self) -> None:
        self.words: list[str] = []

    def add(self, texts: pa.Array) -> None:
        for text in texts.to_pylist():
            if len(self.words) >= AUTHORS_DIVERSITY_WORDS:
                return
            self.words.extend((text or "").split())

    def result(self) -> dict[str, Any]:
        words = self.words[:AUTHORS_DIVERSITY_WORDS]
        ratios = {}
        for n in AUTHORS_DIVERSITY_ORDERS:
            grams = list(zip(*(words[k:] for k in range(n))))
            ratios[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else 1.0
        product = round(float(np.prod(list(ratios.values()))), 6)
        return {"words": len(words), **{k: round(v, 6) for k, v in ratios.items()}, "product": product}


# ------------------------------------------------------------------------------------------ corpus


def _generated_ids(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """(generated ids laid end to end, generated ids per row): each row's input_ids after its prefix_len."""
    column = batch.column("input_ids")
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.int64)
    prefix = np.clip(_prefix_lengths(batch), 0, lengths)
    rows, local = positions(lengths)
    return flat[local >= prefix[rows]], lengths - prefix


def _prefix_lengths(batch: pa.RecordBatch) -> np.ndarray:
    """Each row's prefix_len (0 where the column or the value is missing)."""
    if "prefix_len" not in batch.schema.names:
        return np.zeros(batch.num_rows, np.int64)
    column = pc.fill_null(batch.column("prefix_len"), 0)
    return column.to_numpy(zero_copy_only=False).astype(np.int64)


def _check_ids(ids: np.ndarray, vocab_size: int | None, path: str | os.PathLike) -> None:
    if vocab_size is not None and len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
        raise DataError(
            f"{path}: token id {bad} is outside the vocabulary (size {vocab_size}): the shard was made "
            "with another tokenizer, or vocab_size is wrong."
        )


def _has_token_ids(table: pa.Table, path: str | os.PathLike, expected: bool | None) -> bool:
    """Whether the shard has input_ids; shards that disagree on it, or a shard with no text, are refused."""
    if "text" not in table.column_names:
        raise DataError(f"{path}: has no `text` column (columns: {', '.join(table.column_names)})")
    has = "input_ids" in table.column_names
    if expected is not None and has != expected:
        raise DataError(
            f"{path}: {'has' if has else 'lacks'} an `input_ids` column but the corpus's first shard "
            f"{'lacks' if has else 'has'} one; give the shards of one corpus."
        )
    return has


def corpus_statistics(
    shard_paths: list[str | os.PathLike],
    *,
    bos_id: int | None = None,
    eos_id: int | None = None,
    vocab_size: int | None = None,
    reference_texts: Iterable[str] | None = None,
    prompt_texts: Callable[[dict], str] | None = None,
) -> dict[str, Any]:
    """Statistics of the corpus made of `shard_paths`, streamed shard by shard (JSON-serialisable).

    A row's generated ids are `input_ids[prefix_len:]` (all of them when prefix_len is 0 or absent).
    Token statistics (None when the shards have no `input_ids` column):

    - `samples`: rows; `generated_tokens`: generated ids, summed; `mean_sample_tokens`: their mean per row.
    - `distinct_tokens[n]` (n = 1, 2, 3): distinct n-grams / n-grams of generated ids over the corpus;
      an n-gram lies inside one row's generated ids (BOS/EOS included as ordinary ids).
    - `repetition`: `repeated_4gram_share`, the mean over rows with at least one 4-gram of (4-grams that
      repeat an earlier 4-gram of the row) / (the row's 4-grams); `longest_repeat_mean` / `_max`, the mean
      over all rows / the max of the longest span of generated ids occurring twice in the row (occurrences
      may overlap; 0 when nothing repeats).
    - `documents_per_sample`: mean over rows of the non-empty pieces of the generated ids split on BOS and
      EOS (the given ones; with neither, 1 per non-empty row); `bos_per_1k_tokens` / `eos_per_1k_tokens`:
      BOS / EOS ids per 1000 generated ids (None when that id is not given).
    - `vocab_coverage`: distinct generated ids / `vocab_size` (None without it; an id outside the vocab
      is a DataError).

    Word statistics use the whitespace words (`str.split()`) of each row's `text`, taken literally (a
    generated BOS/EOS shows as its token text). A row's generated words are all its words, except when
    `prompt_texts` is given and the row kept its prefix (prefix_len > 0): then the leading words it shares
    with `prompt_texts(row)` (the longest common word prefix) are the prompt and are dropped. `text` is a
    tokenizer decode, so this needs no tokenizer; a prompt word fused with the first generated text ("hel"
    + "lo") is not shared and stays. Without `prompt_texts` a kept prefix's words are counted as
    generated, as nothing else tells where it ends.

    - `distinct_words[n]`: as `distinct_tokens` over generated words.
    - `copy_rate_reference`: generated word 8-grams found in `reference_ngrams(reference_texts)` / all
      generated word 8-grams, pooled over the corpus (None without references).
    - `copy_rate_prompt`: generated word 8-grams found among the word 8-grams of the row's own prompt
      text / all generated word 8-grams, pooled (None without `prompt_texts`). `prompt_texts` is called
      once per row with the row as a dict of its columns (input_ids as a list); None counts as "".

    `authors_diversity`: the authors' diversity score, so a corpus compares with theirs: over the first
    100,000 whitespace words of `text` in corpus order (shards, then rows; the prompt kept, n-grams running
    across rows), distinct n-grams / n-grams for n = 2, 3, 4 (1.0 where there is none) and their product.

    Ratios with a zero denominator are None; floats are rounded to 6 decimals. Hashing makes n-gram counts
    exact up to 64-bit collisions (in-row repeats: 54-bit), negligible at any corpus size.
    """
    reference = None if reference_texts is None else reference_ngrams(reference_texts)
    words = _WordTally(reference)
    tokens = _TokenTally(bos_id, eos_id)
    diversity = _AuthorsDiversity()
    samples, with_ids = 0, None
    for path in shard_paths:
        table = read_arrow(path)
        with_ids = _has_token_ids(table, path, with_ids)
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            samples += batch.num_rows
            if with_ids:
                ids, lengths = _generated_ids(batch)
                _check_ids(ids, vocab_size, path)
                tokens.add(ids, lengths)
            prompts = None if prompt_texts is None else [prompt_texts(row) for row in batch.to_pylist()]
            words.add(batch.column("text"), _prefix_lengths(batch), prompts)
            diversity.add(batch.column("text"))
        del table
    token_stats = tokens.result(vocab_size)
    if not with_ids:
        token_stats = dict.fromkeys(token_stats)
    return {
        "samples": samples,
        **token_stats,
        **words.result(prompt_texts is not None),
        "authors_diversity": diversity.result(),
    }
