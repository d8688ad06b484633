"""Tokenized documents stored as checksummed Arrow shards, one row per document ([BOS] + ids + [EOS]).

Documents, not fixed blocks, are stored because the trainer packs them into blocks itself, afresh on every
pass over the data (`cdsynth.train.packing.PackedStream`), as the authors' training code regroups its data.
Each row also holds the document's words as the BabyLM rules count them (`count_words`), so that a run
knows the words it has seen.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from cdsynth.data.tokenizer import load_tokenizer, tokenizer_fingerprint
from cdsynth.errors import ConfigError, DataError
from cdsynth.io import atomic_path, read_arrow, read_json, sha256_file, write_arrow, write_json

META_FILE = "meta.json"
COLUMN = "input_ids"
WORDS = "words"
_ENCODE_BATCH = 1024  # documents per encode_batch call: big enough for Rust-side parallelism, small in memory


class Documents(NamedTuple):
    """Documents as one token array: document i is tokens[starts[i]:starts[i + 1]] and has words[i] words."""

    tokens: np.ndarray
    starts: np.ndarray
    words: np.ndarray


def count_words(texts: list[str]) -> np.ndarray:
    """Whitespace-separated words of each text, as the BabyLM rules count a word budget."""
    return np.array([len(text.split()) for text in texts], dtype=np.int64)


def build_shards(
    corpus_arrow: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    tokens_per_shard: int = 1 << 24,
    threads: int = 1,
) -> dict:
    """Encode every document of a corpus split as [BOS] + ids + [EOS], one row each, in file order.

    Returns the meta dict also written to `out_dir/meta.json`.
    """
    table = read_arrow(corpus_arrow)
    if "text" not in table.column_names:
        raise DataError(f"{corpus_arrow}: no `text` column. Rebuild the corpus split with Snakemake.")
    tokenizer = load_tokenizer(tokenizer_dir)
    batches = _encode_batches(table.column("text"), tokenizer, threads)
    return write_documents(
        batches, tokenizer_dir, len(tokenizer), out_dir, tokens_per_shard, str(corpus_arrow)
    )


def write_documents(
    batches: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]],
    tokenizer_dir: str | os.PathLike,
    vocab_size: int,
    out_dir: str | os.PathLike,
    tokens_per_shard: int,
    source: str,
    extra: dict[str, Any] | None = None,
) -> dict:
    """Write (token stream, document lengths, document words) batches as shards of about
    `tokens_per_shard` tokens.

    Returns the meta dict, also written as `out_dir/meta.json`; `extra` entries join it.
    """
    if tokens_per_shard < 1:
        raise ConfigError(f"tokens_per_shard ({tokens_per_shard}) must be >= 1")
    with atomic_path(out_dir, directory=True) as tmp:
        shards = _shard_batches(batches, tmp, tokens_per_shard)
        documents = sum(s["num_documents"] for s in shards)
        if documents == 0:
            raise DataError(f"{source}: no documents to train on; add text to the corpus.")
        meta = {
            "num_documents": documents,
            "num_tokens": sum(s["num_tokens"] for s in shards),
            "num_words": sum(s["num_words"] for s in shards),
            "vocab_size": vocab_size,
            "tokenizer_sha256": tokenizer_fingerprint(tokenizer_dir),
            "source": source,
            **(extra or {}),
            "shards": shards,
        }
        write_json(meta, tmp / META_FILE)
    return meta


def _shard_batches(
    batches: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]], out_dir: Path, tokens_per_shard: int
) -> list[dict[str, Any]]:
    """Write the documents in order into shards; a shard closes with the document that fills its budget."""
    shards: list[dict[str, Any]] = []
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    room = tokens_per_shard
    for values, lengths, words in batches:
        ends = np.cumsum(lengths)
        while len(lengths) and ends[-1] >= room:
            take = int(np.searchsorted(ends, room)) + 1  # documents up to the one that fills the shard
            pending.append((values[: ends[take - 1]], lengths[:take], words[:take]))
            shards.append(_write_shard(out_dir, len(shards), pending))
            values, lengths, words = values[ends[take - 1] :], lengths[take:], words[take:]
            ends = ends[take:] - ends[take - 1]
            pending, room = [], tokens_per_shard
        if len(lengths):
            pending.append((values, lengths, words))
            room -= int(ends[-1])
    if pending:
        shards.append(_write_shard(out_dir, len(shards), pending))
    return shards


def load_documents(
    shards_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike | None = None
) -> Documents:
    """Every document of checked shards, with its words.

    The tokens are one contiguous int32 array. With `tokenizer_dir`, also checks that the shards were built
    with that exact tokenizer.
    """
    shards_dir = Path(shards_dir)
    meta = _read_meta(shards_dir)
    if tokenizer_dir is not None and tokenizer_fingerprint(tokenizer_dir) != meta["tokenizer_sha256"]:
        raise DataError(
            f"shards in {shards_dir} were built with a different tokenizer than {tokenizer_dir}; "
            f"rebuild them (delete {shards_dir} and rerun Snakemake)."
        )
    tokens = np.empty(meta["num_tokens"], dtype=np.int32)
    lengths = np.empty(meta["num_documents"], dtype=np.int64)
    words = np.empty(meta["num_documents"], dtype=np.int64)
    token_row = doc_row = 0
    for shard in meta["shards"]:
        values, doc_lengths, doc_words = _read_shard(shards_dir, shard)
        tokens[token_row : token_row + len(values)] = values
        lengths[doc_row : doc_row + len(doc_lengths)] = doc_lengths
        words[doc_row : doc_row + len(doc_lengths)] = doc_words
        token_row, doc_row = token_row + len(values), doc_row + len(doc_lengths)
    if token_row != len(tokens) or doc_row != len(lengths):
        raise _corrupt(shards_dir, META_FILE, "its totals differ from the shards'")
    return Documents(tokens, np.concatenate([[0], np.cumsum(lengths)]), words)


def _encode_batches(
    texts: pa.ChunkedArray, tokenizer: Any, threads: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ([BOS] + ids + [EOS] of each document, concatenated; their lengths; their words), a batch at
    a time."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    # The Rust backend skips the Python wrapper's per-call overhead (padding, BatchEncoding, ...).
    backend = tokenizer.backend_tokenizer
    with _tokenizer_threads(threads), tqdm(total=len(texts), unit="doc", desc="tokenize") as bar:
        for start in range(0, len(texts), _ENCODE_BATCH):
            batch = [t or "" for t in texts.slice(start, _ENCODE_BATCH).to_pylist()]
            stream: list[int] = []
            lengths = []
            for encoding in backend.encode_batch(batch, add_special_tokens=False):
                stream.append(bos)
                stream.extend(encoding.ids)
                stream.append(eos)
                lengths.append(len(encoding.ids) + 2)
            yield np.array(stream, dtype=np.int32), np.array(lengths, dtype=np.int64), count_words(batch)
            bar.update(len(batch))


@contextlib.contextmanager
def _tokenizer_threads(threads: int) -> Iterator[None]:
    """Limit the tokenizers' Rust thread pool for the duration of the block.

    TOKENIZERS_PARALLELISM is read on every call, so threads=1 is exact. RAYON_NUM_THREADS only takes
    effect if the pool has not started yet in this process, so a larger count is a best-effort cap.
    """
    wanted = {"TOKENIZERS_PARALLELISM": "true" if threads > 1 else "false"}
    if threads > 1:
        wanted["RAYON_NUM_THREADS"] = str(threads)
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _write_shard(
    out_dir: Path, index: int, batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> dict[str, Any]:
    name = f"shard-{index:05d}.arrow"
    values, lengths, words = (np.concatenate(column) for column in zip(*batches))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    documents = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.int32()))
    write_arrow(pa.table({COLUMN: documents, WORDS: pa.array(words, type=pa.int64())}), out_dir / name)
    return {
        "file": name,
        "num_documents": len(lengths),
        "num_tokens": len(values),
        "num_words": int(words.sum()),
        "sha256": sha256_file(out_dir / name),
    }


def _read_meta(shards_dir: Path) -> dict[str, Any]:
    path = shards_dir / META_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found. Build the shards with Snakemake (delete {shards_dir} first).")
    try:
        meta = read_json(path)
    except ValueError as err:
        raise _corrupt(shards_dir, META_FILE, f"unreadable ({err})") from err
    missing = {"num_documents", "num_tokens", "tokenizer_sha256", "shards"} - set(meta)
    if missing:
        raise _corrupt(shards_dir, META_FILE, f"lacks {sorted(missing)}")
    return meta


def _read_shard(shards_dir: Path, shard: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat int32 tokens, document lengths, document words) of a shard, after checking checksum, type and
    counts."""
    path = shards_dir / shard["file"]
    if not path.is_file():
        raise _corrupt(shards_dir, shard["file"], "missing")
    if sha256_file(path) != shard["sha256"]:
        raise _corrupt(shards_dir, shard["file"], "sha256 does not match meta.json")
    try:
        table = read_arrow(path)
    except DataError as err:
        raise _corrupt(shards_dir, shard["file"], str(err)) from err
    expected = pa.schema([(COLUMN, pa.list_(pa.int32())), (WORDS, pa.int64())])
    if not table.schema.equals(expected):
        raise _corrupt(shards_dir, shard["file"], f"schema {table.schema} is not {expected}")
    documents = table.column(COLUMN).combine_chunks()
    if len(documents) != shard["num_documents"]:
        raise _corrupt(
            shards_dir, shard["file"], f"{len(documents)} documents, meta says {shard['num_documents']}"
        )
    lengths = np.diff(documents.offsets.to_numpy()).astype(np.int64)
    return documents.flatten().to_numpy(), lengths, table.column(WORDS).to_numpy()


def _corrupt(shards_dir: Path, name: str, why: str) -> DataError:
    return DataError(
        f"{shards_dir / name}: {why}. The shards are corrupt or stale: "
        f"delete {shards_dir} and rerun Snakemake."
    )
