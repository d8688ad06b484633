"""Mixture training runs: the synthetic ratio they see, and a killed one resumes bit for bit."""

from __future__ import annotations

import csv

import pytest
from helpers import kill_and_resume, micro_settings, weights

from cdsynth.errors import ConfigError
from cdsynth.spec.mixture import Mixture
from cdsynth.spec.training import TrainSettings
from cdsynth.synth.tokens import build_synthetic_shards
from cdsynth.train.trainer import train


def mixture_config(**overrides) -> TrainSettings:
    values = dict(
        seed=4,
        steps=20,
        batch_size=8,
        micro_batch_size=4,
        lr=3e-3,
        warmup_steps=2,
        checkpoints={"every": 10},
        eval_blocks=8,
        mixture=Mixture(0.3),
    )
    return micro_settings(**(values | overrides))


@pytest.mark.parametrize(("rounding", "seen"), [("exact", 0.3), ("paper", 0.25)])
def test_a_mixture_run_records_the_synthetic_ratio_it_saw(
    synthetic_corpus, prepared, tmp_path, rounding, seen
):
    build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens")
    history = train(
        mixture_config(mixture=Mixture(0.3, rounding)),
        prepared["train"],
        prepared["test"],
        prepared["tokenizer"],
        tmp_path / "run",
        synthetic_shards=tmp_path / "tokens",
    )
    assert history[-1]["synthetic_ratio"] == pytest.approx(seen, abs=0.01)
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        assert float(list(csv.DictReader(handle))[-1]["synthetic_ratio"]) == pytest.approx(seen, abs=0.01)
    assert (tmp_path / "run" / "step20" / "model.safetensors").is_file()


def test_a_mixture_without_synthetic_data_is_refused(prepared, tmp_path):
    with pytest.raises(ConfigError, match="needs synthetic token shards"):
        train(mixture_config(), prepared["train"], prepared["test"], prepared["tokenizer"], tmp_path / "run")


def test_a_killed_mixture_run_resumes_to_bitwise_identical_weights(synthetic_corpus, prepared, tmp_path):
    build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens")
    # 200 steps of 2.4 synthetic sequences use the 30-odd synthetic blocks many times over: every pass
    # repacks them, and the resumed run must pick up the very pass and position it was killed in.
    cfg = mixture_config(steps=200, checkpoints={"every": 10})
    paths = {
        "train_shards": str(prepared["train"]),
        "valid_shards": str(prepared["test"]),
        "tokenizer_dir": str(prepared["tokenizer"]),
        "synthetic_shards": str(tmp_path / "tokens"),
    }
    train(cfg, **paths, out_dir=tmp_path / "reference")
    out = kill_and_resume(cfg, paths, tmp_path)
    assert weights(out) == weights(tmp_path / "reference")
