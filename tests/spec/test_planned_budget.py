"""The BabyLM word budget checked before any job: a track's limits against every run's tokens and data."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import REPO

from cdsynth.errors import ConfigError
from cdsynth.io import write_json
from cdsynth.spec.budget import (
    check_planned_budget,
    known_data_words,
    measured_words_per_token,
    planned_problems,
)
from cdsynth.spec.config import validate_config
from cdsynth.spec.plan import plan_of
from cdsynth.spec.tracks import limits_of

RUN = {"steps": 1000, "batch_size": 256, "block_size": 1024}  # 262,144,000 tokens


def test_the_tracks_are_the_2025_rules():
    assert (limits_of("strict").data_words, limits_of("strict").words_seen) == (100_000_000, 1_000_000_000)
    assert (limits_of("strict-small").data_words, limits_of("strict-small").words_seen) == (10**7, 10**8)
    assert limits_of("none") is None


def test_without_measured_shards_a_run_is_bounded_by_one_word_per_token():
    problems = planned_problems("strict-small", {"results/models/base/seed42": RUN}, None, None)
    assert len(problems) == 1
    assert problems[0].startswith("results/models/base/seed42: sees 262,144,000 words, above the 100,000,000")
    assert (
        "1000 steps x 256 x 1024 = 262,144,000 tokens" in problems[0] and "lower train.steps" in problems[0]
    )
    assert planned_problems("strict", {"run": RUN}, None, None) == []


def test_measured_words_per_token_decide_when_the_shards_exist():
    runs = {"run": RUN}
    assert planned_problems("strict-small", runs, 0.3, None) == []  # 78.6M words
    assert "sees 104,857,600 words" in planned_problems("strict-small", runs, 0.4, None)[0]


def test_the_data_is_checked_once_for_the_corpus():
    problems = planned_problems("strict-small", {"a": RUN, "b": RUN}, 0.1, 12_000_000)
    assert problems == [
        "corpus: 12,000,000 words of training data, above the 10,000,000 allowed by the strict-small track; "
        "lower the sources' max_words, or choose babylm.track: none"
    ]


def test_no_track_checks_nothing():
    assert planned_problems("none", {"run": RUN | {"steps": 10**9}}, None, 10**12) == []


def test_data_words_come_from_the_built_corpus_or_the_sources_caps(tmp_path):
    stats = tmp_path / "stats.json"
    capped = {"a": {"max_words": 30}, "b": {"max_words": 12}}
    assert known_data_words(stats, capped) == 42
    assert known_data_words(stats, capped | {"c": {"max_words": None}}) is None
    totals = {"train": {"words": 900}, "seed": {"words": 50}, "test": {"words": 50}}
    stats.write_text(json.dumps({"totals": totals}))
    assert known_data_words(stats, capped) == 950, "train and seed: the test split is not trained on"


def test_words_per_token_are_read_from_the_shards_meta(tmp_path):
    meta = tmp_path / "meta.json"
    assert measured_words_per_token(meta) is None
    meta.write_text(json.dumps({"num_words": 3, "num_tokens": 4}))
    assert measured_words_per_token(meta) == 0.75


def test_a_config_over_its_track_is_refused_naming_every_run(tmp_path):
    files = {"a": str(tmp_path / "a.json"), "b": str(tmp_path / "b.json")}
    with pytest.raises(ConfigError, match=r"strict-small track's word budget:\n  a: sees .*\n  b: sees"):
        check_planned_budget("strict-small", {"a": RUN, "b": RUN}, files, {}, tmp_path / "m", tmp_path / "s")


def test_a_counted_budget_is_checked_exactly_instead_of_the_bound(tmp_path):
    """Run a's 262M tokens would be refused by the bound; its counted 90M words are inside the track."""
    counted = {"run": "a", "data": {"total_words": 10**6, "real_train_words": 10**6}}
    write_json(counted | {"seen": {"total": 90_000_000, "passes_over_real": 90.0}}, tmp_path / "a.json")
    files = {"a": str(tmp_path / "a.json")}
    check_planned_budget("strict-small", {"a": RUN}, files, {}, tmp_path / "m", tmp_path / "s")
    write_json(counted | {"seen": {"total": 110_000_000, "passes_over_real": 110.0}}, tmp_path / "a.json")
    with pytest.raises(ConfigError, match=r"a: over the strict-small track's budget: sees 110,000,000 words"):
        check_planned_budget("strict-small", {"a": RUN}, files, {}, tmp_path / "m", tmp_path / "s")


def preset(*names: str) -> dict:
    """Presets merged key by key, as Snakemake merges several --configfile."""
    from snakemake.utils import update_config

    config: dict = {}
    for name in names:
        update_config(config, yaml.safe_load((REPO / "workflow/presets" / name).read_text()))
    return config


def test_the_papers_setup_is_over_the_strict_track_and_its_strict_variant_is_inside():
    paper = preset("paper.yaml")
    runs = plan_of(paper).baseline_runs | plan_of(paper).mixture_runs
    over = planned_problems("strict", runs, None, None)
    assert over and all("sees 2,097,152,000 words, above the 1,000,000,000 allowed" in line for line in over)
    strict = preset("paper.yaml", "overlays/paper-strict.yaml")
    validate_config(strict, REPO / "workflow/schemas/config.schema.yaml")
    plan = plan_of(strict)
    assert plan.track == "strict" and plan.tables["main"][-1] == "CD-Early-250"
    assert planned_problems("strict", plan.baseline_runs | plan.mixture_runs, None, None) == []
