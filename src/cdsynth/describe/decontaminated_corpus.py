"""A synthetic corpus without its contaminated samples: a corpus of its own, with its manifest and card.

The copy that `synth.decontaminate` trains on, made with `cdsynth.describe.decontamination`'s filter: the
same shard names, each with its source shard's metadata (its counts updated, its `decontamination` added),
a `manifest.json` holding the corpus definition, the shards' counts and the filter's `decontamination`
record, and a dataset card saying what was dropped. Apart from the real train split's filter, so that an
edit of the card or of the synthetic shard format never reruns the real split's filter (and with it every
model).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cdsynth.describe.card import CARD_NAME, dataset_card, recorded_models, show, table
from cdsynth.describe.contamination import NGRAM, eval_ngrams
from cdsynth.describe.decontamination import kept_rows, record, write_kept
from cdsynth.io import atomic_path, write_json
from cdsynth.synth.manifest import read_manifest, shard_metadata, verified_shards, write_manifest


def decontaminate_corpus(
    corpus_dir: str | os.PathLike, data_dir: str | os.PathLike, out_dir: str | os.PathLike, n: int = NGRAM
) -> dict[str, Any]:
    """Write a synthetic corpus without its contaminated samples to `out_dir` (atomically, as a whole),
    a corpus read as any other (module docstring); returns its manifest."""
    corpus_dir = Path(corpus_dir)
    source = read_manifest(corpus_dir)
    ngrams = eval_ngrams(data_dir, n)
    keeps = []
    with atomic_path(out_dir, directory=True) as tmp:
        for shard, corpus in verified_shards(corpus_dir, source):
            keep = kept_rows(corpus, ngrams)
            write_kept(corpus, keep, shard_schema(corpus, keep, n), tmp / shard["file"])
            keeps.append(keep)
        shards = [str(tmp / shard["file"]) for shard in source["shards"]]
        manifest = write_manifest(shards, tmp / "manifest.json", source["params"])
        done = record(n, np.concatenate(keeps) if keeps else np.ones(0, bool))
        manifest["decontamination"] = done
        write_json(manifest, tmp / "manifest.json")
        write_decontaminated_card(tmp, manifest, done, f"{corpus_dir.resolve().name}-decontaminated")
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


def write_decontaminated_card(
    corpus_dir: Path, manifest: dict[str, Any], done: dict[str, Any], name: str
) -> Path:
    """Write the filtered corpus's dataset card: the usual card, its statistics those of the corpus before
    the filter (the parent's `stats.json`), and a Decontamination section before How to load."""
    expert, amateur = recorded_models(corpus_dir, manifest)
    text = dataset_card(
        manifest,
        None,
        name=name,
        expert=expert,
        amateur=amateur,
        extra_sections=[decontamination_section(done)],
    )
    text = text.replace(
        "Statistics: not computed.",
        "The statistics of the corpus before the filter are in its `stats.json` (the parent directory).",
    )
    path = corpus_dir / CARD_NAME
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    return path
