"""What a finished synthetic corpus looks like: its statistics (`stats.json`) and dataset card (`README.md`).

Both are computed from the files alone (shards, manifest, tokenizer, optionally the real text the prompts
came from and the evaluation data), so `cdsynth stats DIR` can describe a corpus made anywhere, and the
workflow describes each corpus in a job of its own: editing the statistics reruns descriptions, never a
mixture run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from cdsynth.describe.card import write_card
from cdsynth.describe.contamination import corpus_contamination
from cdsynth.describe.measures import corpus_statistics
from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, write_json


def shard_paths(corpus_dir: Path) -> list[Path]:
    """The shards a corpus's manifest lists, or every `*.arrow` file of a directory made elsewhere."""
    manifest = corpus_dir / "manifest.json"
    if manifest.is_file():
        return [corpus_dir / shard["file"] for shard in read_json(manifest)["shards"]]
    paths = sorted(corpus_dir.glob("*.arrow"))
    if not paths:
        raise DataError(f"{corpus_dir}: no manifest.json and no .arrow shards: not a corpus directory")
    return paths


def describe_corpus(
    corpus_dir: str | os.PathLike,
    tokenizer_dir: str | os.PathLike | None = None,
    reference: str | os.PathLike | None = None,
    name: str | None = None,
    eval_data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write `stats.json` and, for a corpus with a manifest, `README.md` into `corpus_dir`; return the stats.

    `tokenizer_dir` (the expert's, or the workflow's tokenizer) gives BOS/EOS, the vocabulary and each
    sample's prompt text; `reference` is a corpus split (.arrow with `text`), whose word 8-grams the copy
    rate is measured against. `name` is the directory the corpus is published as, when it is described
    in a work directory of another name (default: `corpus_dir`'s own). With `eval_data` (the BabyLM
    evaluation data, the config's eval.data_dir), `contamination` holds the corpus's overlap with it
    (`cdsynth.describe.contamination`).
    """
    corpus_dir = Path(corpus_dir)
    tokenizer = None if tokenizer_dir is None else AutoTokenizer.from_pretrained(tokenizer_dir)
    texts = None if reference is None else read_arrow(reference).column("text").to_pylist()
    stats = corpus_statistics(
        shard_paths(corpus_dir),
        bos_id=tokenizer and tokenizer.bos_token_id,
        eos_id=tokenizer and tokenizer.eos_token_id,
        vocab_size=tokenizer and len(tokenizer),
        reference_texts=texts,
        prompt_texts=None if tokenizer is None else _prompt_text(tokenizer),
    )
    if eval_data is not None:
        stats["contamination"] = corpus_contamination(shard_paths(corpus_dir), eval_data)
    write_json(stats, corpus_dir / "stats.json")
    if (corpus_dir / "manifest.json").is_file():
        write_card(corpus_dir, stats, name)
    return stats


def _prompt_text(tokenizer):
    """A row's real prompt as text: its ids after BOS up to `prefix_len`."""
    return lambda row: tokenizer.decode(row["input_ids"][1 : row["prefix_len"]]) if row["prefix_len"] else ""
