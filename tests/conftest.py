"""Shared fixtures: the real data in ../shared/data (CI clones the project with shared/ beside it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("CDSYNTH_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "corpus").is_dir():
        pytest.fail(f"{path}/corpus not found: clone the project next to shared/ or set CDSYNTH_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def corpus_dir(shared_data: Path) -> Path:
    return shared_data / "corpus"


@pytest.fixture(scope="session")
def corpus_arrow(tmp_path_factory, corpus_dir: Path) -> Path:
    """~150k words of real text as one corpus split file (no splitting logic involved)."""
    from helpers import real_corpus

    return real_corpus(corpus_dir, tmp_path_factory.mktemp("corpus") / "train.arrow")


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory, corpus_arrow: Path) -> Path:
    """A 2000-piece tokenizer trained on `corpus_arrow`."""
    from helpers import VOCAB

    from cdsynth.data.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer(corpus_arrow, out, recipe="sentencepiece", vocab_size=VOCAB)
    return out


def small_sources(corpus_dir: Path, max_words: int) -> dict:
    """A few real files per source, capped, as `build_corpus` takes them."""
    tiny = corpus_dir / "tinystories"
    return {
        "tinystories": {
            "format": "lines",
            "max_words": max_words,
            "train": [str(tiny / "tinystories_v1_train_head_2316stories.txt.xz")],
            "test": [str(tiny / "tinystories_v1_valid_head.txt.xz")],
        },
        "gutenberg": {
            "format": "paragraphs",
            "max_words": max_words,
            "train": [str(p) for p in sorted((corpus_dir / "gutenberg").glob("pg*.txt.xz"))],
        },
    }


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, corpus_dir: Path) -> dict[str, Path]:
    """Corpus splits, a small tokenizer and token shards built from real text, shared by the tests."""
    from cdsynth.data.corpus import build_corpus
    from cdsynth.data.shards import build_shards
    from cdsynth.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("prepared")
    build_corpus(small_sources(corpus_dir, 60_000), root / "corpus")
    train_tokenizer(root / "corpus" / "train.arrow", root / "tokenizer", recipe="authors", vocab_size=1000)
    for split in ("train", "test"):
        build_shards(
            root / "corpus" / f"{split}.arrow",
            root / "tokenizer",
            root / "tokens" / split,
            tokens_per_shard=20_000,
        )
    return {
        "corpus": root / "corpus",
        "tokenizer": root / "tokenizer",
        "train": root / "tokens" / "train",
        "test": root / "tokens" / "test",
    }


@pytest.fixture(scope="session")
def micro_run(prepared, tmp_path_factory) -> Path:
    """A micro LLaMA trained 40 steps on the prepared shards: step20 (the BAD amateur) and step40 (GOOD)."""
    from helpers import micro_settings

    from cdsynth.train.trainer import train

    out = tmp_path_factory.mktemp("micro_run")
    cfg = micro_settings(
        seed=3,
        steps=40,
        batch_size=8,
        micro_batch_size=8,
        lr=3e-3,
        warmup_steps=4,
        checkpoints={"every": 20},
        eval_blocks=16,
    )
    train(cfg, prepared["train"], prepared["test"], prepared["tokenizer"], out)
    return out


@pytest.fixture(scope="session")
def synthetic_corpus(micro_run, prepared, tmp_path_factory) -> Path:
    """A real ancestral corpus from the micro GOOD: 2 shards, 40 samples of 21 + 24 tokens."""
    from cdsynth.spec.protocol import Protocol
    from cdsynth.synth.generation import synthesize_shards
    from cdsynth.synth.manifest import write_manifest
    from cdsynth.synth.scoring import Scoring

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
        corpus={"fixture": "micro ancestral"},
    )
    write_manifest([str(p) for p in paths], out / "manifest.json", {"fixture": "micro ancestral"})
    return out
