"""Decontamination: a corpus without the samples that hold an evaluation n-gram, and how many were dropped.

The filter of the config's `corpus.decontaminate` (the real train split, here) and `synth.decontaminate`
(each synthetic corpus: `cdsynth.describe.decontaminated_corpus`). A sample is dropped exactly when
`cdsynth.describe.contamination` counts it contaminated: the same words, the same n-grams (n = its
`NGRAM`) and the same hashed evaluation keys; this module only keeps, per sample, whether one of its
n-grams hits. A real train document or a synthetic sample is dropped whole, never cut.

The corpus is read memory-mapped, in record batches of `BATCH_ROWS` rows, and written batch by batch, so
memory grows with the corpus only by one byte per sample (whether it is kept). Every output is written
atomically.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa

from cdsynth.describe.contamination import (
    NGRAM,
    EvalNgrams,
    chained_keys,
    eval_ngrams,
    lookup,
    normalized_words,
)
from cdsynth.describe.measures import BATCH_ROWS, ratio
from cdsynth.io import atomic_path, read_arrow, write_json


def contaminated_rows(texts: pa.Array, ngrams: EvalNgrams) -> np.ndarray:
    """Per text, whether it holds an evaluation n-gram: the samples `overlap` counts contaminated."""
    values, lengths = normalized_words(texts)
    hit = np.zeros(len(texts), bool)
    for size, keys, rows in chained_keys(values, lengths, max(ngrams.distinct, default=0)):
        if size in ngrams.distinct:
            _, found = lookup(ngrams.distinct[size], keys)
            hit[rows[found]] = True
    return hit


def kept_rows(corpus: pa.Table, ngrams: EvalNgrams) -> np.ndarray:
    """Per row of a table with a `text` column, whether it is kept: it holds no evaluation n-gram."""
    batches = corpus.select(["text"]).to_batches(max_chunksize=BATCH_ROWS)
    hits = [contaminated_rows(batch.column(0), ngrams) for batch in batches]
    return ~np.concatenate(hits) if hits else np.ones(corpus.num_rows, bool)


def write_kept(corpus: pa.Table, keep: np.ndarray, schema: pa.Schema, path: str | os.PathLike) -> None:
    """Write the kept rows of `corpus` to `path` (an Arrow stream, atomically), batch by batch."""
    with (
        atomic_path(path) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pa.ipc.new_stream(sink, schema) as writer,
    ):
        start = 0
        for batch in corpus.to_batches(max_chunksize=BATCH_ROWS):
            mine = keep[start : start + batch.num_rows]
            start += batch.num_rows
            kept = batch.filter(pa.array(mine))
            writer.write_batch(pa.RecordBatch.from_arrays(kept.columns, schema=schema))


def record(n: int, keep: np.ndarray) -> dict[str, Any]:
    """What the filter did: `n`, the `samples` it read, the `dropped_samples` and their share, the kept."""
    samples, dropped = len(keep), int((~keep).sum())
    return {
        "n": n,
        "samples": samples,
        "dropped_samples": dropped,
        "dropped_share": ratio(dropped, samples),
        "kept_samples": samples - dropped,
    }


def decontaminate_split(
    split: str | os.PathLike,
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    stats_out: str | os.PathLike,
    n: int = NGRAM,
) -> dict[str, Any]:
    """Write a real corpus split without its contaminated documents to `out`, and to `stats_out` its
    statistics: its `samples` (the kept documents) and `decontamination` (`record`)."""
    corpus = read_arrow(split)
    keep = kept_rows(corpus, eval_ngrams(data_dir, n))
    write_kept(corpus, keep, corpus.schema, out)
    done = record(n, keep)
    stats = {"samples": done["kept_samples"], "decontamination": done}
    write_json(stats, stats_out)
    return stats
