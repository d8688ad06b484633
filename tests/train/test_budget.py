"""A run's word budget counted before it trains: the very words the trainer then records, and a refusal
of a run over its track that writes nothing."""

from __future__ import annotations

import csv
import json

import pytest
from test_mixture_runs import mixture_config

from cdsynth.data.shards import load_documents
from cdsynth.errors import ConfigError
from cdsynth.io import read_json
from cdsynth.synth.tokens import build_synthetic_shards
from cdsynth.train.budget import count_budget, write_budget
from cdsynth.train.trainer import train


def last_metrics(run) -> dict[str, str]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))[-1]


def test_a_mixture_budget_counts_the_words_its_training_then_sees(
    synthetic_corpus, micro_run, prepared, tmp_path
):
    build_synthetic_shards(synthetic_corpus, prepared["tokenizer"], tmp_path / "tokens")
    cfg = mixture_config()
    ancillary = [
        {"role": "good", "run": str(micro_run), "step": 40},
        {"role": "amateur", "run": str(micro_run), "step": 20},
    ]
    budget = write_budget(
        tmp_path / "budget.json",
        track="strict-small",
        run="mix/seed4",
        order=cfg.data_order,
        train_shards=prepared["train"],
        tokenizer_dir=prepared["tokenizer"],
        corpus_stats=prepared["corpus"] / "stats.json",
        synthetic_shards=tmp_path / "tokens",
        ancillary=ancillary,
    )
    assert read_json(tmp_path / "budget.json") == budget
    train(
        cfg, prepared["train"], prepared["test"], prepared["tokenizer"], tmp_path / "run", tmp_path / "tokens"
    )
    row = last_metrics(tmp_path / "run")
    seen = budget["seen"]
    assert (seen["real"], seen["synthetic"]) == (int(row["words_real"]), int(row["words_synthetic"]))
    assert seen["synthetic"] > 0 and seen["tokens"] == int(row["tokens"])
    real_words = int(load_documents(prepared["train"]).words.sum())
    prompt_words = read_json(prepared["corpus"] / "stats.json")["totals"]["seed"]["words"]
    assert budget["data"] == {
        "real_train_words": real_words,
        "prompt_words": prompt_words,
        "total_words": real_words + prompt_words,
    }
    assert seen["passes_over_real"] == round(seen["real"] / real_words, 3)
    good, amateur = budget["ancillary"]
    for model, step in ((good, 40), (amateur, 20)):
        assert (
            model["words_seen"]
            == json.loads((micro_run / f"step{step}/checkpoint.json").read_text())["words"]
        )
        assert model["data_words"] == real_words and model["checkpoint"] == str(micro_run / f"step{step}")
    assert set(budget) == {"run", "data", "seen", "ancillary"}, "counts only: the track is the config's"


def test_a_baseline_budget_has_no_prompts_and_no_ancillary_models(prepared):
    cfg = mixture_config(mixture=None)
    budget = count_budget(
        "base/seed4",
        cfg.data_order,
        prepared["train"],
        prepared["tokenizer"],
        prepared["corpus"] / "stats.json",
    )
    assert budget["data"]["prompt_words"] == 0 and budget["ancillary"] == []
    assert budget["seen"]["synthetic"] == 0 and budget["seen"]["real"] == budget["seen"]["total"] > 0


def test_a_run_over_its_track_is_refused_with_its_numbers_and_nothing_written(prepared, tmp_path):
    # 200,000 steps x 64 x 64 tokens: hundreds of millions of words, over strict-small's 100M.
    cfg = mixture_config(mixture=None, steps=200_000, batch_size=64, micro_batch_size=64, block_size=64)
    refusal = (
        r"base/seed4: over the strict-small track's budget: sees [\d,]+ words, above the 100,000,000 "
        r"allowed \([\d.]+ passes over [\d,]+ real words\)"
    )
    with pytest.raises(ConfigError, match=refusal):
        write_budget(
            tmp_path / "budget.json",
            track="strict-small",
            run="base/seed4",
            order=cfg.data_order,
            train_shards=prepared["train"],
            tokenizer_dir=prepared["tokenizer"],
            corpus_stats=prepared["corpus"] / "stats.json",
        )
    assert not (tmp_path / "budget.json").exists()
