"""Tokenized documents in checksummed token shards, on real text."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pytest
from helpers import write_corpus

from cdsynth.data.shards import build_shards, count_words, load_documents
from cdsynth.data.tokenizer import load_tokenizer, tokenizer_fingerprint, train_tokenizer
from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, sha256_file

PER_SHARD = 40_000  # tokens


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, corpus_arrow: Path, tok_dir: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards") / "train"
    meta = build_shards(corpus_arrow, tok_dir, out, tokens_per_shard=PER_SHARD)
    return out, meta


@pytest.fixture(scope="session")
def documents(corpus_arrow: Path, tok_dir: Path) -> list[list[int]]:
    """The expected documents, computed independently through the tokenizer's Python API."""
    tok = load_tokenizer(tok_dir)
    texts = read_arrow(corpus_arrow).column("text").to_pylist()
    return [[1, *doc, 2] for doc in tok(texts, add_special_tokens=False)["input_ids"]]


@pytest.fixture
def shards_copy(built: tuple[Path, dict], tmp_path: Path) -> Path:
    return Path(shutil.copytree(built[0], tmp_path / "shards"))


def test_documents_are_bos_ids_eos_in_corpus_order(
    built: tuple[Path, dict], tok_dir: Path, documents: list[list[int]]
) -> None:
    tokens, starts, _ = load_documents(built[0], tok_dir)
    assert tokens.dtype == np.int32 and tokens.flags.c_contiguous
    assert [tokens[a:b].tolist() for a, b in zip(starts[:-1], starts[1:])] == documents


def test_every_document_carries_its_whitespace_words(built: tuple[Path, dict], corpus_arrow: Path) -> None:
    """The BabyLM rules count words by whitespace: "a  b\nc" is three words, newlines and runs included."""
    texts = read_arrow(corpus_arrow).column("text").to_pylist()
    words = load_documents(built[0]).words
    assert words.tolist() == [len(text.split()) for text in texts]
    assert (
        built[1]["num_words"]
        == sum(len(text.split()) for text in texts)
        == sum(shard["num_words"] for shard in built[1]["shards"])
    )


def test_counting_words_of_hand_made_documents() -> None:
    texts = ["one", "two words", "  padded \t and\nsplit  ", "", "hy-phen don't 3.14"]
    assert count_words(texts).tolist() == [1, 2, 3, 0, 3]


def test_meta_counts_and_shard_split(
    built: tuple[Path, dict], corpus_arrow: Path, tok_dir: Path, documents: list[list[int]]
) -> None:
    out, meta = built
    assert meta == read_json(out / "meta.json")
    assert meta["num_documents"] == read_arrow(corpus_arrow).num_rows == len(documents)
    assert meta["num_tokens"] == sum(map(len, documents))
    assert meta["vocab_size"] == 2000
    assert meta["tokenizer_sha256"] == tokenizer_fingerprint(tok_dir)
    sizes = [s["num_tokens"] for s in meta["shards"]]
    assert len(sizes) >= 3, "the test corpus should span several shards"
    assert all(size >= PER_SHARD for size in sizes[:-1]) and sizes[-1] > 0
    assert sum(s["num_documents"] for s in meta["shards"]) == meta["num_documents"]
    assert [s["file"] for s in meta["shards"]] == [f"shard-{i:05d}.arrow" for i in range(len(sizes))]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(s["file"] for s in meta["shards"]), "meta.json"]
    )
    for shard in meta["shards"]:
        assert sha256_file(out / shard["file"]) == shard["sha256"]
        assert read_arrow(out / shard["file"]).schema.field("input_ids").type == pa.list_(pa.int32())


def test_datasets_reads_a_shard(built: tuple[Path, dict], documents: list[list[int]]) -> None:
    out, meta = built
    ds = datasets.Dataset.from_file(str(out / "shard-00001.arrow"))
    assert len(ds) == meta["shards"][1]["num_documents"]
    assert ds[0]["input_ids"] == documents[meta["shards"][0]["num_documents"]]


def test_threads_and_one_big_shard_give_the_same_documents(
    built: tuple[Path, dict], corpus_arrow: Path, tok_dir: Path, tmp_path: Path
) -> None:
    meta = build_shards(corpus_arrow, tok_dir, tmp_path / "one", threads=2)
    assert len(meta["shards"]) == 1 and meta["num_tokens"] == built[1]["num_tokens"]
    for ours, theirs in zip(load_documents(tmp_path / "one"), load_documents(built[0])):
        np.testing.assert_array_equal(ours, theirs)


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
        load_documents(shards_copy)


def test_document_count_mismatch_is_named(shards_copy: Path, built: tuple[Path, dict]) -> None:
    meta_path = shards_copy / "meta.json"
    count = built[1]["shards"][0]["num_documents"]
    meta_path.write_text(meta_path.read_text().replace(f'"num_documents": {count}', '"num_documents": 7', 1))
    with pytest.raises(DataError, match=r"shard-00000\.arrow.*documents"):
        load_documents(shards_copy)


def test_missing_meta_is_a_data_error(shards_copy: Path) -> None:
    (shards_copy / "meta.json").unlink()
    with pytest.raises(DataError, match="meta.json"):
        load_documents(shards_copy)


def test_other_tokenizer_is_rejected(built: tuple[Path, dict], corpus_arrow: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    train_tokenizer(corpus_arrow, other, recipe="sentencepiece", vocab_size=1500)
    with pytest.raises(DataError, match="different tokenizer.*rebuild them"):
        load_documents(built[0], other)


def test_an_empty_corpus_is_a_data_error(tok_dir: Path, tmp_path: Path) -> None:
    corpus = write_corpus([], tmp_path / "small.arrow")
    with pytest.raises(DataError, match=r"small\.arrow.*no documents"):
        build_shards(corpus, tok_dir, tmp_path / "shards")
    assert not (tmp_path / "shards").exists()
