"""A synthetic corpus as training documents: a seeded share held out, samples split on BOS/EOS."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cdsynth.data.shards import load_documents
from cdsynth.data.tokenizer import load_tokenizer
from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, write_json
from cdsynth.synth.tokens import build_synthetic_shards, split_documents

BOS, EOS = 1, 2


def test_samples_are_split_on_bos_and_eos_into_documents():
    rows = [[BOS, 5, 6, EOS, 7, BOS, 8], [BOS, 9, EOS, EOS], [10, 11]]
    values = np.array([t for row in rows for t in row])
    starts = np.cumsum([0] + [len(row) for row in rows[:-1]])
    stream, lengths = split_documents(values, starts, BOS, EOS)
    expected = [[5, 6], [7], [8], [9], [10, 11]]
    assert lengths.tolist() == [len(piece) + 2 for piece in expected]
    assert stream.tolist() == [t for piece in expected for t in (BOS, *piece, EOS)]


def split_samples(samples: list[list[int]]) -> list[list[int]]:
    """The documents of samples split on BOS/EOS, one token at a time."""
    pieces: list[list[int]] = [[]]
    for ids in samples:
        for token in ids:
            if token in (BOS, EOS):
                pieces.append([])
            else:
                pieces[-1].append(token)
        pieces.append([])
    return [[BOS, *piece, EOS] for piece in pieces if piece]


def corpus_samples(corpus: Path) -> list[list[int]]:
    return [
        ids for i in range(2) for ids in read_arrow(corpus / f"shard-{i:05d}.arrow")["input_ids"].to_pylist()
    ]


def stored_documents(tokens_dir: Path, tokenizer: Path) -> list[list[int]]:
    tokens, starts, _ = load_documents(tokens_dir, tokenizer)
    return [tokens[a:b].tolist() for a, b in zip(starts[:-1], starts[1:])]


def test_a_synthetic_document_counts_the_words_of_its_decoded_text(synthetic_corpus, prepared, tmp_path):
    build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens")
    documents = load_documents(tmp_path / "tokens", prepared["tokenizer"])
    tokenizer = load_tokenizer(prepared["tokenizer"])
    pieces = [
        documents.tokens[a + 1 : b - 1].tolist() for a, b in zip(documents.starts, documents.starts[1:])
    ]
    expected = [len(tokenizer.decode(piece, skip_special_tokens=True).split()) for piece in pieces]
    assert documents.words.tolist() == expected and sum(expected) > len(pieces)


def test_synthetic_documents_are_the_split_samples(synthetic_corpus, prepared, tmp_path):
    meta = build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens")
    expected = split_samples(corpus_samples(synthetic_corpus))
    assert stored_documents(tmp_path / "tokens", prepared["tokenizer"]) == expected
    assert meta["num_documents"] == len(expected) and meta["held_out_samples"] == 0


def test_a_seeded_share_of_samples_is_held_out(synthetic_corpus, prepared, tmp_path):
    samples = corpus_samples(synthetic_corpus)
    meta = build_synthetic_shards(
        synthetic_corpus, prepared["tokenizer"], tmp_path / "a", holdout=0.1, holdout_seed=3
    )
    assert meta["held_out_samples"] == 4 and meta["samples"] == len(samples) == 40
    documents = stored_documents(tmp_path / "a", prepared["tokenizer"])
    # Exactly the documents of the 36 kept samples, in order: find which 4 samples are missing.
    kept = [i for i in range(len(samples)) if split_samples([samples[i]])[0] in documents]
    assert documents == split_samples([samples[i] for i in kept]) and len(kept) == 36
    build_synthetic_shards(
        synthetic_corpus, prepared["tokenizer"], tmp_path / "b", holdout=0.1, holdout_seed=3
    )
    assert stored_documents(tmp_path / "b", prepared["tokenizer"]) == documents
    build_synthetic_shards(
        synthetic_corpus, prepared["tokenizer"], tmp_path / "c", holdout=0.1, holdout_seed=4
    )
    assert stored_documents(tmp_path / "c", prepared["tokenizer"]) != documents


def test_a_corrupt_synthetic_shard_is_refused(synthetic_corpus, prepared, tmp_path):
    broken = tmp_path / "corpus"
    broken.mkdir()
    for path in synthetic_corpus.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    shard = broken / "shard-00001.arrow"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DataError, match="shard-00001.arrow: missing, or its sha256 differs"):
        build_synthetic_shards(broken, prepared["tokenizer"], tmp_path / "tokens")
    assert not (tmp_path / "tokens").exists()


def test_shards_of_another_corpus_are_refused(synthetic_corpus, prepared, tmp_path):
    """A manifest whose settings are not the ones its shards were generated with is not trusted either."""
    relabelled = tmp_path / "corpus"
    shutil.copytree(synthetic_corpus, relabelled)
    manifest = read_json(relabelled / "manifest.json")
    write_json(manifest | {"params": {"scoring": {"method": "cd"}}}, relabelled / "manifest.json")
    with pytest.raises(DataError, match="shard-00000.arrow: not shard 0 of this corpus"):
        build_synthetic_shards(relabelled, prepared["tokenizer"], tmp_path / "tokens")
    assert not (tmp_path / "tokens").exists()
