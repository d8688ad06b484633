"""A synthetic corpus as training documents: a share of its samples held out, the rest split on BOS/EOS.

The documents go into the same shard format as the real text's (`cdsynth.data.shards`), so the trainer
packs both streams alike.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from cdsynth.data.shards import count_words, write_documents
from cdsynth.data.tokenizer import load_tokenizer
from cdsynth.errors import ConfigError, DataError
from cdsynth.synth.manifest import read_manifest, verified_shards


def build_synthetic_shards(
    corpus_dir: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    tokens_per_shard: int = 1 << 24,
    holdout: float = 0.0,
    holdout_seed: int = 42,
) -> dict:
    """Training documents from a synthetic corpus (its `manifest.json` and shards), like `build_shards`.

    A seeded `holdout` share of the samples is left out, as the authors trained on 95% of each corpus. Each
    kept sample is split on BOS/EOS, as the paper did: the pieces become [BOS] + piece + [EOS] documents, so
    a generated end of text never runs into the next sample without a boundary.
    """
    if not 0 <= holdout < 1:
        raise ConfigError(f"synthetic holdout {holdout}: must be in [0, 1)")
    corpus_dir = Path(corpus_dir)
    tokenizer = load_tokenizer(tokenizer_dir)
    samples = _synthetic_samples(corpus_dir, len(tokenizer))
    kept = _without_holdout(sum(len(s) for s in samples), holdout, holdout_seed)
    batches = _synthetic_batches(samples, kept, tokenizer)
    meta = write_documents(
        batches,
        tokenizer_dir,
        len(tokenizer),
        out_dir,
        tokens_per_shard,
        str(corpus_dir),
        extra={"samples": int(len(kept)), "held_out_samples": int((~kept).sum()), "holdout": holdout},
    )
    return meta


def _synthetic_samples(corpus_dir: Path, vocab: int) -> list[pa.ListArray]:
    """Each checked shard's samples (`input_ids`) of a synthetic corpus, in manifest order."""
    out = []
    for shard, table in verified_shards(corpus_dir, read_manifest(corpus_dir)):
        samples = table.column("input_ids").combine_chunks()
        values = samples.values.to_numpy()
        if len(values) and values.max() >= vocab:
            raise DataError(
                f"{corpus_dir / shard['file']}: token id {values.max()} is outside the tokenizer's {vocab} "
                "ids; the corpus was made with another tokenizer. Regenerate it with this workflow's GOOD "
                "model."
            )
        out.append(samples)
    return out


def _without_holdout(samples: int, holdout: float, seed: int) -> np.ndarray:
    """A mask of the samples kept for training: all but a seeded ceil(holdout x samples) of them."""
    kept = np.ones(samples, dtype=bool)
    kept[np.random.default_rng(seed).permutation(samples)[: math.ceil(holdout * samples)]] = False
    return kept


def _synthetic_batches(
    samples: list[pa.ListArray], kept: np.ndarray, tokenizer
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per synthetic shard, the documents of its kept samples split on BOS/EOS, with their words."""
    first = 0
    for shard in samples:
        mine = kept[first : first + len(shard)]
        first += len(shard)
        chosen = shard.filter(pa.array(mine))
        values, offsets = chosen.flatten().to_numpy(), chosen.offsets.to_numpy()
        documents, lengths = split_documents(
            values, offsets[:-1] - offsets[0], tokenizer.bos_token_id, tokenizer.eos_token_id
        )
        yield documents, lengths, document_words(documents, lengths, tokenizer)


def document_words(documents: np.ndarray, lengths: np.ndarray, tokenizer) -> np.ndarray:
    """The words of each [BOS] + piece + [EOS] document, counted on its decoded text as real text's are."""
    ends = np.cumsum(lengths)
    pieces = [documents[end - length + 1 : end - 1].tolist() for end, length in zip(ends, lengths)]
    return count_words(tokenizer.backend_tokenizer.decode_batch(pieces, skip_special_tokens=True))


def split_documents(
    values: np.ndarray, row_starts: np.ndarray, bos: int, eos: int
) -> tuple[np.ndarray, np.ndarray]:
    """[BOS] + piece + [EOS] for every non-empty run of tokens between rows, BOS and EOS.

    Returns the documents concatenated and their lengths.
    """
    boundary = (values == bos) | (values == eos)
    starts = np.zeros(len(values), dtype=bool)
    starts[row_starts[row_starts < len(values)]] = True
    keep = ~boundary
    piece = np.cumsum(boundary | starts)[keep]
    kept = values[keep]
    _, first, counts = np.unique(piece, return_index=True, return_counts=True)
    shift = 2 * np.arange(len(counts))
    out = np.empty(len(kept) + 2 * len(counts), dtype=np.int32)
    out[np.arange(len(kept)) + 2 * np.repeat(np.arange(len(counts)), counts) + 1] = kept
    out[first + shift] = bos
    out[first + shift + counts + 1] = eos
    return out, counts.astype(np.int64) + 2
