"""Pack tokenized documents into fixed-size training blocks stored as checksummed Arrow shards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from cdsynth.errors import ConfigError, DataError
from cdsynth.io import atomic_path, read_arrow, read_json, sha256_file, write_arrow, write_json
from cdsynth.tokenizer import load_tokenizer, tokenizer_fingerprint

META_FILE = "meta.json"
COLUMN = "input_ids"
_ENCODE_BATCH = 1024  # documents per encode_batch call: big enough for Rust-side parallelism, small in memory


def build_shards(
    corpus_arrow: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    block_size: int,
    blocks_per_shard: int = 8192,
    threads: int = 1,
) -> dict:
    """Encode every document as [BOS] + ids + [EOS], concatenate them and cut blocks of `block_size`.

    The final partial block is dropped. Returns the meta dict also written to `out_dir/meta.json`.
    """
    table = read_arrow(corpus_arrow)
    if "text" not in table.column_names:
        raise DataError(f"{corpus_arrow}: no `text` column. Rebuild the corpus split with Snakemake.")
    tokenizer = load_tokenizer(tokenizer_dir)
    batches = _encode_batches(table.column("text"), tokenizer, threads)
    return _write_blocks(
        batches, tokenizer_dir, len(tokenizer), out_dir, block_size, blocks_per_shard, str(corpus_arrow)
    )


def build_synthetic_shards(
    corpus_dir: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    block_size: int,
    blocks_per_shard: int = 8192,
) -> dict:
    """Training blocks from a synthetic corpus (its `manifest.json` and shards), like `build_shards`.

    Each sample is split on BOS/EOS first, as the paper did: the pieces become [BOS] + piece + [EOS]
    documents, so a generated end of text never runs into the next sample without a boundary.
    """
    corpus_dir = Path(corpus_dir)
    tokenizer = load_tokenizer(tokenizer_dir)
    batches = _synthetic_batches(corpus_dir, tokenizer.bos_token_id, tokenizer.eos_token_id, len(tokenizer))
    return _write_blocks(
        batches, tokenizer_dir, len(tokenizer), out_dir, block_size, blocks_per_shard, str(corpus_dir)
    )


def _write_blocks(
    batches: Iterator[tuple[np.ndarray, int]],
    tokenizer_dir: str | os.PathLike,
    vocab_size: int,
    out_dir: str | os.PathLike,
    block_size: int,
    blocks_per_shard: int,
    source: str,
) -> dict:
    """Pack (token stream, documents) batches into shards under `out_dir`, with meta.json, atomically."""
    if block_size < 1 or blocks_per_shard < 1:
        raise ConfigError(f"block_size ({block_size}) and blocks_per_shard ({blocks_per_shard}) must be >= 1")
    with atomic_path(out_dir, directory=True) as tmp:
        shards, total, documents = _pack(batches, tmp, block_size, block_size * blocks_per_shard)
        num_blocks = sum(s["num_blocks"] for s in shards)
        if num_blocks == 0:
            raise DataError(
                f"{source}: {documents} documents give {total} tokens, fewer than one block of "
                f"{block_size}; lower block_size or add text to the corpus."
            )
        meta = {
            "block_size": block_size,
            "num_blocks": num_blocks,
            "num_tokens": num_blocks * block_size,
            "num_documents": documents,
            "dropped_tokens": total - num_blocks * block_size,
            "vocab_size": vocab_size,
            "tokenizer_sha256": tokenizer_fingerprint(tokenizer_dir),
            "source": source,
            "shards": shards,
        }
        write_json(meta, tmp / META_FILE)
    return meta


def load_blocks(shards_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Read every shard after checking its checksum and block count.

    Returns one contiguous (num_blocks, block_size) int32 array. With `tokenizer_dir`, also checks that the
    shards were built with that exact tokenizer.
    """
    shards_dir = Path(shards_dir)
    meta = _read_meta(shards_dir)
    if tokenizer_dir is not None and tokenizer_fingerprint(tokenizer_dir) != meta["tokenizer_sha256"]:
        raise DataError(
            f"shards in {shards_dir} were built with a different tokenizer than {tokenizer_dir}; "
            f"rebuild them (delete {shards_dir} and rerun Snakemake)."
        )
    block_size = meta["block_size"]
    blocks = np.empty((meta["num_blocks"], block_size), dtype=np.int32)
    row = 0
    for shard in meta["shards"]:
        values = _read_shard(shards_dir, shard, block_size)
        blocks[row : row + shard["num_blocks"]] = values.reshape(-1, block_size)
        row += shard["num_blocks"]
    if row != len(blocks):
        raise _corrupt(shards_dir, META_FILE, f"shards hold {row} blocks, meta says {len(blocks)}")
    return blocks


def _pack(
    batches: Iterator[tuple[np.ndarray, int]], out_dir: Path, block_size: int, shard_tokens: int
) -> tuple[list[dict[str, Any]], int, int]:
    """Cut the token stream into shards of `shard_tokens` (the last one shorter).

    Returns (shards, tokens, documents).
    """
    shards: list[dict[str, Any]] = []
    # Batches are joined only when a shard is full, which keeps packing linear in the corpus size.
    pending: list[np.ndarray] = []
    pending_len = total = documents = 0
    for ids, docs in batches:
        total += len(ids)
        documents += docs
        pending.append(ids)
        pending_len += len(ids)
        if pending_len < shard_tokens:
            continue
        joined, start = np.concatenate(pending), 0
        while len(joined) - start >= shard_tokens:
            shards.append(
                _write_shard(out_dir, len(shards), joined[start : start + shard_tokens], block_size)
            )
            start += shard_tokens
        pending, pending_len = [joined[start:]], len(joined) - start
    rest = np.concatenate(pending) if pending else np.empty(0, dtype=np.int32)
    full = len(rest) // block_size * block_size
    if full:
        shards.append(_write_shard(out_dir, len(shards), rest[:full], block_size))
    return shards, total, documents


def _encode_batches(texts: pa.ChunkedArray, tokenizer: Any, threads: int) -> Iterator[tuple[np.ndarray, int]]:
    """Yield the flat int32 stream [BOS] + ids + [EOS] per document, one array per batch, in file order."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    # The Rust backend skips the Python wrapper's per-call overhead (padding, BatchEncoding, ...).
    backend = tokenizer.backend_tokenizer
    with _tokenizer_threads(threads), tqdm(total=len(texts), unit="doc", desc="tokenize") as bar:
        for start in range(0, len(texts), _ENCODE_BATCH):
            batch = [t or "" for t in texts.slice(start, _ENCODE_BATCH).to_pylist()]
            stream: list[int] = []
            for encoding in backend.encode_batch(batch, add_special_tokens=False):
                stream.append(bos)
                stream.extend(encoding.ids)
                stream.append(eos)
            yield np.array(stream, dtype=np.int32), len(batch)
            bar.update(len(batch))


def _synthetic_batches(corpus_dir: Path, bos: int, eos: int, vocab: int) -> Iterator[tuple[np.ndarray, int]]:
    """Per checked shard of a synthetic corpus, the stream of its samples split on BOS/EOS."""
    manifest_path = corpus_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: not found. Generate the corpus first (rerun Snakemake).")
    for shard in read_json(manifest_path)["shards"]:
        path = corpus_dir / shard["file"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            raise DataError(
                f"{path}: missing, or its sha256 differs from manifest.json. The synthetic corpus is "
                f"corrupt: delete {corpus_dir} and rerun Snakemake."
            )
        samples = read_arrow(path).column("input_ids").combine_chunks()
        values, offsets = samples.values.to_numpy(), samples.offsets.to_numpy()
        if len(values) and values.max() >= vocab:
            raise DataError(
                f"{path}: token id {values.max()} is outside the tokenizer's {vocab} ids; the corpus was "
                "made with another tokenizer. Regenerate it with this workflow's GOOD model."
            )
        yield split_documents(values, offsets[:-1], bos, eos)


def split_documents(values: np.ndarray, row_starts: np.ndarray, bos: int, eos: int) -> tuple[np.ndarray, int]:
    """[BOS] + piece + [EOS] for every non-empty run of tokens between rows, BOS and EOS; (stream, pieces)."""
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
    return out, len(counts)


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


def _write_shard(out_dir: Path, index: int, tokens: np.ndarray, block_size: int) -> dict[str, Any]:
    name = f"shard-{index:05d}.arrow"
    blocks = pa.FixedSizeListArray.from_arrays(pa.array(tokens, type=pa.int32()), block_size)
    write_arrow(pa.table({COLUMN: blocks}), out_dir / name)
    return {"file": name, "num_blocks": len(blocks), "sha256": sha256_file(out_dir / name)}


def _read_meta(shards_dir: Path) -> dict[str, Any]:
    path = shards_dir / META_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found. Build the shards with Snakemake (delete {shards_dir} first).")
    try:
        meta = read_json(path)
    except ValueError as err:
        raise _corrupt(shards_dir, META_FILE, f"unreadable ({err})") from err
    missing = {"block_size", "num_blocks", "tokenizer_sha256", "shards"} - set(meta)
    if missing:
        raise _corrupt(shards_dir, META_FILE, f"lacks {sorted(missing)}")
    return meta


def _read_shard(shards_dir: Path, shard: dict[str, Any], block_size: int) -> np.ndarray:
    """Return the shard's tokens as a flat int32 array after checking checksum, type and block count."""
    path = shards_dir / shard["file"]
    if not path.is_file():
        raise _corrupt(shards_dir, shard["file"], "missing")
    if sha256_file(path) != shard["sha256"]:
        raise _corrupt(shards_dir, shard["file"], "sha256 does not match meta.json")
    try:
        table = read_arrow(path)
    except DataError as err:
        raise _corrupt(shards_dir, shard["file"], str(err)) from err
    expected = pa.list_(pa.int32(), block_size)
    if table.column_names != [COLUMN] or table.schema.field(COLUMN).type != expected:
        raise _corrupt(shards_dir, shard["file"], f"schema {table.schema} is not {COLUMN}: {expected}")
    if table.num_rows != shard["num_blocks"]:
        raise _corrupt(shards_dir, shard["file"], f"{table.num_rows} blocks, meta says {shard['num_blocks']}")
    return table.column(COLUMN).combine_chunks().flatten().to_numpy()


def _corrupt(shards_dir: Path, name: str, why: str) -> DataError:
    return DataError(
        f"{shards_dir / name}: {why}. The shards are corrupt or stale: "
        f"delete {shards_dir} and rerun Snakemake."
    )
