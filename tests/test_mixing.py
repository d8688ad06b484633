"""Synthetic corpora as training blocks, and mixture training runs that see the configured share."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import MICRO_ARCH

from cdsynth.errors import ConfigError, DataError
from cdsynth.io import read_arrow
from cdsynth.scoring import Scoring
from cdsynth.shards import build_synthetic_shards, load_blocks, split_documents
from cdsynth.synth import Protocol, synthesize_shards, write_manifest
from cdsynth.train import TrainConfig, train

BOS, EOS = 1, 2


def test_samples_are_split_on_bos_and_eos_into_documents():
    rows = [[BOS, 5, 6, EOS, 7, BOS, 8], [BOS, 9, EOS, EOS], [10, 11]]
    values = np.array([t for row in rows for t in row])
    starts = np.cumsum([0] + [len(row) for row in rows[:-1]])
    stream, pieces = split_documents(values, starts, BOS, EOS)
    expected = [[5, 6], [7], [8], [9], [10, 11]]
    assert pieces == 5
    assert stream.tolist() == [t for piece in expected for t in (BOS, *piece, EOS)]


@pytest.fixture(scope="module")
def synthetic_corpus(micro_run, prepared, tmp_path_factory) -> Path:
    """A real ancestral corpus from the micro GOOD: 2 shards, 40 samples of 21 + 24 tokens."""
    out = tmp_path_factory.mktemp("synthetic")
    protocol = Protocol(tokens=960, prefix_tokens=20, continuations=4, new_tokens=24, shards=2, seed=5)
    paths = [out / f"shard-{index:05d}.arrow" for index in range(2)]
    synthesize_shards(
        expert_dir=micro_run / "step40",
        amateur_dir=None,
        amateur_dropout=None,
        prompts_path=prepared["corpus"] / "seed.arrow",
        scoring=Scoring(method="ancestral"),
        protocol=protocol,
        shards=dict(enumerate(paths)),
    )
    write_manifest([str(p) for p in paths], out / "manifest.json", {})
    return out


def test_synthetic_blocks_hold_every_split_sample(synthetic_corpus, prepared, tmp_path):
    meta = build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens", block_size=32)
    blocks = load_blocks(tmp_path / "tokens", prepared["tokenizer"])
    samples = [
        ids
        for i in range(2)
        for ids in read_arrow(synthetic_corpus / f"shard-{i:05d}.arrow")["input_ids"].to_pylist()
    ]
    pieces = [[]]
    for ids in samples:
        for token in ids:
            if token in (BOS, EOS):
                pieces.append([])
            else:
                pieces[-1].append(token)
        pieces.append([])
    expected = [t for piece in pieces if piece for t in (BOS, *piece, EOS)]
    assert meta["num_documents"] == sum(1 for piece in pieces if piece)
    assert blocks.ravel().tolist() == expected[: blocks.size]
    assert len(expected) - blocks.size == meta["dropped_tokens"] < 32


def test_a_corrupt_synthetic_shard_is_refused(synthetic_corpus, prepared, tmp_path):
    broken = tmp_path / "corpus"
    broken.mkdir()
    for path in synthetic_corpus.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    shard = broken / "shard-00001.arrow"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DataError, match="shard-00001.arrow: missing, or its sha256 differs"):
        build_synthetic_shards(broken, prepared["tokenizer"], tmp_path / "tokens", block_size=32)
    assert not (tmp_path / "tokens").exists()


def mixture_config(**overrides) -> TrainConfig:
    values = dict(
        arch=MICRO_ARCH,
        seed=4,
        steps=20,
        batch_size=8,
        micro_batch_size=4,
        lr=3e-3,
        warmup_steps=2,
        save_every=10,
        eval_blocks=8,
        threads=1,
        synthetic_fraction=0.3,
    )
    return TrainConfig(**(values | overrides))


@pytest.mark.parametrize(("rounding", "share"), [("exact", 0.3), ("paper", 0.25)])
def test_a_mixture_run_records_the_synthetic_share_it_saw(
    synthetic_corpus, prepared, tmp_path, rounding, share
):
    build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens", block_size=32)
    history = train(
        mixture_config(mix_rounding=rounding),
        prepared["train"],
        prepared["test"],
        prepared["tokenizer"],
        tmp_path / "run",
        synthetic_shards=tmp_path / "tokens",
    )
    assert history[-1]["synthetic_fraction"] == pytest.approx(share, abs=0.01)
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        assert float(list(csv.DictReader(handle))[-1]["synthetic_fraction"]) == pytest.approx(share, abs=0.01)
    assert (tmp_path / "run" / "step20" / "model.safetensors").is_file()


def test_a_mixture_without_synthetic_data_is_refused(prepared, tmp_path):
    with pytest.raises(ConfigError, match="needs synthetic token shards"):
        train(mixture_config(), prepared["train"], prepared["test"], prepared["tokenizer"], tmp_path / "run")
