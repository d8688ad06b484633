"""Packing documents into checksummed token shards, on real text."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pytest
from helpers import write_corpus

from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, sha256_file
from cdsynth.shards import build_shards, load_blocks
from cdsynth.tokenizer import load_tokenizer, tokenizer_fingerprint, train_tokenizer

BLOCK = 128
PER_SHARD = 300


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, corpus_arrow: Path, tok_dir: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards") / "train"
    meta = build_shards(corpus_arrow, tok_dir, out, block_size=BLOCK, blocks_per_shard=PER_SHARD)
    return out, meta


@pytest.fixture(scope="session")
def stream(corpus_arrow: Path, tok_dir: Path) -> np.ndarray:
    """The expected token stream, computed independently through the tokenizer's Python API."""
    tok = load_tokenizer(tok_dir)
    texts = read_arrow(corpus_arrow).column("text").to_pylist()
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    return np.array([t for doc in ids for t in [1, *doc, 2]], dtype=np.int32)


@pytest.fixture
def shards_copy(built: tuple[Path, dict], tmp_path: Path) -> Path:
    return Path(shutil.copytree(built[0], tmp_path / "shards"))


def test_blocks_are_the_packed_document_stream(
    built: tuple[Path, dict], tok_dir: Path, stream: np.ndarray
) -> None:
    out, meta = built
    blocks = load_blocks(out, tok_dir)
    assert blocks.dtype == np.int32 and blocks.flags.c_contiguous
    assert blocks.shape == (meta["num_blocks"], BLOCK)
    assert meta["num_blocks"] == len(stream) // BLOCK
    np.testing.assert_array_equal(blocks.ravel(), stream[: blocks.size])


def test_meta_counts_and_shard_split(
    built: tuple[Path, dict], corpus_arrow: Path, tok_dir: Path, stream: np.ndarray
) -> None:
    out, meta = built
    assert meta == read_json(out / "meta.json")
    assert meta["block_size"] == BLOCK
    assert meta["num_documents"] == read_arrow(corpus_arrow).num_rows
    assert meta["num_tokens"] == meta["num_blocks"] * BLOCK
    assert meta["dropped_tokens"] == len(stream) - meta["num_tokens"] < BLOCK
    assert meta["vocab_size"] == 2000
    assert meta["tokenizer_sha256"] == tokenizer_fingerprint(tok_dir)
    sizes = [s["num_blocks"] for s in meta["shards"]]
    assert len(sizes) >= 3, "the test corpus should span several shards"
    assert sizes[:-1] == [PER_SHARD] * (len(sizes) - 1) and 0 < sizes[-1] <= PER_SHARD
    assert sum(sizes) == meta["num_blocks"]
    assert [s["file"] for s in meta["shards"]] == [f"shard-{i:05d}.arrow" for i in range(len(sizes))]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(s["file"] for s in meta["shards"]), "meta.json"]
    )
    for shard in meta["shards"]:
        assert sha256_file(out / shard["file"]) == shard["sha256"]
        assert read_arrow(out / shard["file"]).schema.field("input_ids").type == pa.list_(pa.int32(), BLOCK)


def test_datasets_reads_a_shard(built: tuple[Path, dict]) -> None:
    out, meta = built
    ds = datasets.Dataset.from_file(str(out / "shard-00001.arrow"))
    assert len(ds) == PER_SHARD
    first = np.asarray(ds.with_format("numpy")[0]["input_ids"])
    np.testing.assert_array_equal(first, load_blocks(out)[PER_SHARD])


def test_threads_and_one_big_shard_give_the_same_blocks(
    built: tuple[Path, dict], corpus_arrow: Path, tok_dir: Path, tmp_path: Path
) -> None:
    meta = build_shards(corpus_arrow, tok_dir, tmp_path / "one", block_size=BLOCK, threads=2)
    assert len(meta["shards"]) == 1 and meta["num_blocks"] == built[1]["num_blocks"]
    np.testing.assert_array_equal(load_blocks(tmp_path / "one"), load_blocks(built[0]))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_shard_is_named(shards_copy: Path, damage: str) -> None:
    shard = shards_copy / "shard-00001.arrow"
    data = bytearray(shard.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"shard-00001\.arrow.*rerun Snakemake"):
        load_blocks(shards_copy)


def test_block_count_mismatch_is_named(shards_copy: Path) -> None:
    meta_path = shards_copy / "meta.json"
    meta_path.write_text(meta_path.read_text().replace(f'"num_blocks": {PER_SHARD}', '"num_blocks": 7', 1))
    with pytest.raises(DataError, match=r"shard-00000\.arrow.*blocks"):
        load_blocks(shards_copy)


def test_missing_meta_is_a_data_error(shards_copy: Path) -> None:
    (shards_copy / "meta.json").unlink()
    with pytest.raises(DataError, match="meta.json"):
        load_blocks(shards_copy)


def test_other_tokenizer_is_rejected(built: tuple[Path, dict], corpus_arrow: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    train_tokenizer(corpus_arrow, other, vocab_size=1500)
    with pytest.raises(DataError, match="different tokenizer.*rebuild them"):
        load_blocks(built[0], other)


@pytest.mark.parametrize("texts", [[], ["Just a few words, far fewer than one block."]])
def test_too_small_corpus_is_a_data_error(texts: list[str], tok_dir: Path, tmp_path: Path) -> None:
    corpus = write_corpus(texts, tmp_path / "small.arrow")
    with pytest.raises(DataError, match=r"small\.arrow.*lower block_size or add text"):
        build_shards(corpus, tok_dir, tmp_path / "shards", block_size=BLOCK)
    assert not (tmp_path / "shards").exists()
