"""Decontamination: a corpus without the samples that hold an evaluation n-gram, and how many were dropped.

The filter of the config's `corpus.decontaminate` (the real train split) and `synth.decontaminate` (each
synthetic corpus). A sample is dropped exactly when `cdsynth.describe.contamination` counts it
contaminated: the same words, the same n-grams (n = its `NGRAM`) and the same hashed evaluation keys; this
module only keeps, per sample, whether one of its n-grams hits. A real train document or a synthetic
sample is dropped whole, never cut.

The corpus is read memory-mapped, in record batches of `BATCH_ROWS` rows, and written batch by batch, so
memory grows with the corpus only by one byte per sample (whether it is kept). Every output is written
atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cdsynth.describe.card import dataset_card, recorded_models, show, table
from cdsynth.describe.contamination import (
    NGRAM,
    EvalNgrams,
    chained_keys,
    eval_ngrams,
    lookup,
    normalized_words,
)
from cdsynth.describe.measures import BATCH_ROWS, ratio
from cdsynth.errors import DataError
from cdsynth.io import atomic_path, read_arrow, read_json, sha256_file, write_json
from cdsynth.synth.manifest import checked_shard, shard_metadata, write_manifest

CARD_NAME = "README.md"


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


def decontaminate_corpus(
    corpus_dir: str | os.PathLike, data_dir: str | os.PathLike, out_dir: str | os.PathLike, n: int = NGRAM
) -> dict[str, Any]:
    """Write a synthetic corpus without its contaminated samples to `out_dir` (atomically, as a whole).

    `out_dir` is a corpus in its own right, read as any other: the same shard names, each with the source
    shard's metadata (its counts updated, its `decontamination` added), a `manifest.json` with the corpus
    definition, the shards' counts and the filter's `decontamination` record (`record`), and a dataset
    card saying what was dropped. Returns the manifest.
    """
    corpus_dir = Path(corpus_dir)
    manifest_path = corpus_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: not found. Generate the corpus first (rerun Snakemake).")
    source = read_json(manifest_path)
    ngrams = eval_ngrams(data_dir, n)
    keeps = []
    with atomic_path(out_dir, directory=True) as tmp:
        for index, shard in enumerate(source["shards"]):
            path = corpus_dir / shard["file"]
            if not path.is_file() or sha256_file(path) != shard["sha256"]:
                raise DataError(
                    f"{path}: missing, or its sha256 differs from manifest.json. The synthetic corpus is "
                    f"corrupt: delete {corpus_dir} and rerun Snakemake."
                )
            corpus = checked_shard(path, index, source["params"])
            keep = kept_rows(corpus, ngrams)
            write_kept(corpus, keep, shard_schema(corpus, keep, n), tmp / shard["file"])
            keeps.append(keep)
        shards = [str(tmp / shard["file"]) for shard in source["shards"]]
        manifest = write_manifest(shards, tmp / "manifest.json", source["params"])
        done = record(n, np.concatenate(keeps) if keeps else np.ones(0, bool))
        manifest["decontamination"] = done
        write_json(manifest, tmp / "manifest.json")
        write_decontaminated_card(tmp, done, f"{corpus_dir.resolve().name}-decontaminated")
    return manifest


def shard_schema(corpus: pa.Table, keep: np.ndarray, n: int) -> pa.Schema:
    """A source shard's schema, its metadata's counts those of the kept rows (every row of a shard has
    the same number of new tokens) and the shard's own `decontamination` record added."""
    info = shard_metadata(corpus)
    rows = info.get("rows", corpus.num_rows)
    kept = int(keep.sum())
    info |= {
        "rows": kept,
        "new_tokens": info["new_tokens"] // rows * kept if rows else 0,
        "decontamination": record(n, keep),
    }
    metadata = dict(corpus.schema.metadata or {}) | {b"cdsynth": json.dumps(info, sort_keys=True).encode()}
    return corpus.schema.with_metadata(metadata)


def decontamination_section(done: dict[str, Any]) -> str:
    """The card's account of the filter."""
    rows = [[f"`decontamination.{key}`", show(value)] for key, value in done.items()]
    return (
        f"## Decontamination\n\nEvery sample holding a word {done['n']}-gram of the BabyLM 2025 evaluation "
        "data (an evaluation text shorter than that: the whole text) was dropped whole, as "
        f"`cdsynth.describe.contamination` defines it: {show(done['dropped_samples'])} of "
        f"{show(done['samples'])} samples, {show(done['kept_samples'])} kept. `manifest.json` records the "
        "same numbers (`decontamination`); the corpus before the filter is the parent directory.\n\n"
        + table(["Statistic", "Value"], rows)
    )


def write_decontaminated_card(corpus_dir: Path, done: dict[str, Any], name: str) -> Path:
    """Write the filtered corpus's dataset card: the usual card, its statistics those of the corpus before
    the filter (the parent's `stats.json`), and a Decontamination section before How to load."""
    manifest = read_json(corpus_dir / "manifest.json")
    expert, amateur = recorded_models(corpus_dir, manifest)
    text = dataset_card(manifest, None, name=name, expert=expert, amateur=amateur)
    text = text.replace(
        "Statistics: not computed.",
        "The statistics of the corpus before the filter are in its `stats.json` (the parent directory).",
    )
    head, tail = text.split("\n\n## How to load", 1)
    text = f"{head}\n\n{decontamination_section(done)}\n\n## How to load{tail}"
    path = corpus_dir / CARD_NAME
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    return path
