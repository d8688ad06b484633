"""Synthetic corpora as training documents, and mixture training runs that see the configured share."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import MICRO_ARCH, kill_and_resume, weights

from cdsynth.errors import ConfigError, DataError
from cdsynth.io import read_arrow
from cdsynth.scoring import Scoring
from cdsynth.shards import build_synthetic_shards, load_documents, split_documents
from cdsynth.synth import Protocol, synthesize_shards, write_manifest
from cdsynth.train import TrainConfig, train

BOS, EOS = 1, 2


def test_samples_are_split_on_bos_and_eos_into_documents():
    rows = [[BOS, 5, 6, EOS, 7, BOS, 8], [BOS, 9, EOS, EOS], [10, 11]]
    values = np.array([t for row in rows for t in row])
    starts = np.cumsum([0] + [len(row) for row in rows[:-1]])
    stream, lengths = split_documents(values, starts, BOS, EOS)
    expected = [[5, 6], [7], [8], [9], [10, 11]]
    assert lengths.tolist() == [len(piece) + 2 for piece in expected]
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
    tokens, starts = load_documents(tokens_dir, tokenizer)
    return [tokens[a:b].tolist() for a, b in zip(starts[:-1], starts[1:])]


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


def mixture_config(**overrides) -> TrainConfig:
    values = dict(
        arch=MICRO_ARCH,
        seed=4,
        block_size=32,
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
    build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens")
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


def test_a_killed_mixture_run_resumes_to_bitwise_identical_weights(synthetic_corpus, prepared, tmp_path):
    build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens")
    # 200 steps of 2.4 synthetic sequences use the 30-odd synthetic blocks many times over: every pass
    # repacks them, and the resumed run must pick up the very pass and position it was killed in.
    cfg = mixture_config(steps=200, save_every=10)
    paths = {
        "train_shards": str(prepared["train"]),
        "valid_shards": str(prepared["test"]),
        "tokenizer_dir": str(prepared["tokenizer"]),
        "synthetic_shards": str(tmp_path / "tokens"),
    }
    train(cfg, **{k: v for k, v in paths.items()}, out_dir=tmp_path / "reference")
    out = kill_and_resume(cfg, paths, tmp_path)
    assert weights(out) == weights(tmp_path / "reference")
