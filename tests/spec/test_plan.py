"""The plan of a config: what the workflow makes for it, checked on the shipped configs and on edits of them.

Expectations are counted from the config itself where that is simple, and from README for the paper grid.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cdsynth.spec.config import validate_config
from cdsynth.spec.plan import Plan, plan_of
from cdsynth.spec.training import TrainSettings

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIGS = {
    "demo": REPO / "config.yaml",
    "mini": REPO / "workflow/presets/mini.yaml",
    "paper": REPO / "workflow/presets/paper.yaml",
}


def load(name: str) -> dict:
    return yaml.safe_load(CONFIGS[name].read_text())


@pytest.fixture
def planned(shared_data, monkeypatch):
    """The plan of a config, checked first as the Snakefile checks it; its source paths (../shared/data)
    resolve from the project directory, as from Snakemake's working directory."""
    monkeypatch.chdir(REPO)

    def plan(config: dict) -> Plan:
        validate_config(config, SCHEMA)
        return plan_of(config)

    return plan


def corpus_specs(config: dict) -> set[str]:
    return {
        json.dumps(e["corpus"], sort_keys=True) for e in config["experiments"].values() if e.get("corpus")
    }


def mixture_specs(config: dict) -> set[tuple[str, float]]:
    """(corpus spec, ratio) of every experiment with a corpus: what defines a mixture run but its seed."""
    return {
        (json.dumps(e["corpus"], sort_keys=True), e.get("ratio", config["mix"]["ratio"]))
        for e in config["experiments"].values()
        if e.get("corpus")
    }


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_plan_counts_what_the_config_lists(planned, name):
    config = load(name)
    plan = planned(config)
    baseline_runs = sum(len(seeds) for seeds in config["baseline"].values())
    mixture_runs = len(mixture_specs(config)) * len(config["mix"]["seeds"])
    assert len(plan.corpora) == len(corpus_specs(config))
    assert len(plan.shards) == config["synth"]["shards"]
    assert len(plan.baseline_runs) == baseline_runs
    assert len(plan.mixture_runs) == mixture_runs
    assert len(plan.evaluations) == baseline_runs + mixture_runs
    assert list(plan.summaries) == list(config["experiments"])
    assert list(plan.tables) == list(config["tables"])


def test_the_paper_grid_is_the_one_readme_quotes(planned):
    """docs/reproducing.md: 11 downloads, 11 baseline and 300 mixture runs (30 mixtures x 10 seeds), 25
    corpora of 20 shards, 311 evaluation jobs, 31 summaries, 5 tables."""
    plan = planned(load("paper"))
    assert len(plan.downloads) == 11
    assert len(plan.baseline_runs) == 11
    assert len(plan.mixture_runs) == 300
    assert len({run.rsplit("/seed", 1)[0] for run in plan.mixture_runs}) == 30
    assert (len(plan.corpora), len(plan.shards)) == (25, 20)
    assert len(plan.evaluations) == 311
    assert len(plan.summaries) == 31
    assert len(plan.tables) == 5
    assert plan.swept_tables == ["ratio"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_table_starts_with_the_baseline_then_its_rows_in_order(planned, name):
    config = load(name)
    plan = planned(config)
    for table, rows in plan.tables.items():
        assert rows[0] == plan.baseline
        assert rows[1:] == [row for row in config["tables"][table] if row != plan.baseline]


def test_a_table_that_leaves_out_or_moves_the_baseline_still_starts_with_it(planned):
    config = load("demo")
    config["tables"] = {"moved": ["CD-Early-50", "Baseline", "No-Contrast"], "without": ["No-Contrast"]}
    plan = planned(config)
    assert plan.tables == {
        "moved": ["Baseline", "CD-Early-50", "No-Contrast"],
        "without": ["Baseline", "No-Contrast"],
    }


def test_a_mixture_run_is_named_by_its_mixture_never_by_its_experiment(planned):
    config = load("demo")
    plan = planned(config)
    renamed = copy.deepcopy(config)
    renamed["experiments"] = {
        ("Renamed" if name == "No-Contrast" else name): spec for name, spec in config["experiments"].items()
    }
    renamed["tables"] = {"main": ["Baseline", "Renamed"]}
    replanned = planned(renamed)
    assert replanned.mixture_runs == plan.mixture_runs
    assert replanned.experiment_runs["Renamed"] == plan.experiment_runs["No-Contrast"]
    assert not any(name in run for name in config["experiments"] for run in plan.mixture_runs)


def test_a_mixture_runs_params_are_its_baselines_and_its_mixture(planned):
    config = load("demo")
    plan = planned(config)
    baseline = plan.experiment_runs[plan.baseline]
    for name, experiment in plan.experiments.items():
        if experiment.mixture is None:
            continue
        for seed, run in plan.experiment_runs[name].items():
            params = dict(plan.mixture_runs[run])
            mixture = {"ratio": experiment.mixture.ratio, "rounding": config["mix"]["rounding"]}
            assert params.pop("mixture") == mixture
            assert params == plan.baseline_runs[baseline[seed]]
            assert params["seed"] == seed


def test_the_loggers_reach_every_runs_settings_and_no_budget(planned):
    """A tracker changes what a run publishes, not the words it sees."""
    config = load("demo")
    config["train"]["loggers"] = ["tensorboard"]
    plan, unlogged = planned(config), planned(load("demo"))
    for params in (plan.baseline_runs | plan.mixture_runs).values():
        recipe = dict(params)
        settings = TrainSettings.of(recipe, recipe.pop("arch"), recipe.pop("seed"))
        assert settings.loggers == ("tensorboard",)
    assert plan.budgets == unlogged.budgets


def test_experiments_that_share_a_corpus_share_its_entry_and_not_their_runs(planned):
    config = load("demo")
    before = planned(copy.deepcopy(config))
    config["experiments"]["CD-Early-50-Ratio-0.5"] = config["experiments"]["CD-Early-50"] | {"ratio": 0.5}
    config["tables"]["ratio"] = ["Baseline", "CD-Early-50", "CD-Early-50-Ratio-0.5"]
    plan = planned(config)
    assert plan.corpora == before.corpora
    assert len(plan.mixture_runs) == len(before.mixture_runs) + len(config["mix"]["seeds"])
    shared = plan.experiments["CD-Early-50"].corpus.name
    assert plan.table_corpora["ratio"] == [shared]
    assert plan.swept_tables == ["ratio"]
    assert plan.ratios["CD-Early-50-Ratio-0.5"] == 0.5 and plan.ratios[plan.baseline] == 0.0


def test_the_paper_ratio_ablation_makes_one_corpus(planned):
    plan = planned(load("paper"))
    rows = plan.tables["ratio"][1:]
    assert len({plan.experiments[row].corpus.name for row in rows}) == 1
    assert len(plan.table_corpora["ratio"]) == 1
    assert len({tuple(plan.experiment_runs[row].values()) for row in rows}) == len(rows)


def test_an_amateur_is_a_checkpoint_of_the_run_it_names(planned):
    plan = planned(load("paper"))
    corpora = {e.corpus.name: e.corpus for e in plan.experiments.values() if e.corpus}
    kinds = set()
    for name, corpus in corpora.items():
        amateur = corpus.amateur
        kinds.add(amateur and amateur.kind)
        if amateur is None or amateur.kind == "dropout":
            assert name not in plan.amateur_runs and plan.corpora[name]["amateur_dir"] is None
            continue
        model, seed = (
            (plan.good.model, plan.good.seed) if amateur.kind == "early" else (amateur.model, amateur.seed)
        )
        run = f"results/models/{model}/seed{seed}"
        assert plan.amateur_runs[name] == run and run in plan.baseline_runs
        assert plan.corpora[name]["amateur_dir"] == f"{run}/step{amateur.step}"
    assert kinds == {None, "early", "small", "dropout"}


def test_a_dropout_amateur_falls_back_to_torch_under_vllm_and_says_so(planned):
    config = load("paper")
    config["synth"]["backend"] = "vllm"
    # the repetition controls that read a row's history are refused under vLLM, not moved to torch
    del config["tables"]["beyond"]
    for name, experiment in list(config["experiments"].items()):
        if {"repetition_penalty", "no_repeat_ngram"} & set(experiment.get("corpus", {})):
            del config["experiments"][name]
    plan = planned(config)
    dropout = [name for name, params in plan.corpora.items() if params["amateur_dropout"] is not None]
    assert dropout
    assert {name for name, params in plan.corpora.items() if params["backend"] == "torch"} == set(dropout)
    assert len(plan.warnings) == len(dropout)
    assert all(any(name in warning for warning in plan.warnings) for name in dropout)
    assert planned(load("paper")).warnings == []


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_summary_reads_one_evaluation_per_seed_of_its_experiments_runs(planned, name):
    config = load(name)
    plan = planned(config)
    for experiment, evaluations in plan.summaries.items():
        runs = plan.experiment_runs[experiment]
        assert list(runs) == config["mix"]["seeds"]
        assert [plan.evaluations[evaluation] for evaluation in evaluations] == list(runs.values())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_saved_steps_are_every_kth_ending_with_the_last(planned, name):
    config = load(name)
    steps, every = config["train"]["steps"], config["train"]["checkpoints"]["every"]
    assert planned(config).saved_steps == list(range(every, steps + 1, every))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_rule_all_makes_the_baseline_runs_every_corpus_and_every_report(planned, name):
    plan = planned(load(name))
    targets = plan.targets
    assert len(targets) == len(set(targets))
    baseline_evaluations = [e for e, run in plan.evaluations.items() if run in plan.baseline_runs]
    assert len(baseline_evaluations) == len(plan.baseline_runs)
    expected = (
        2 * len(plan.baseline_runs)
        + len(plan.corpora)
        + 1  # the real train split's description
        + len(plan.tables)
        + len(plan.swept_tables)
        + len(plan.corpora_sections)
        + len(plan.tables)  # each table's budget table
    )
    assert len(targets) == expected
    assert set(plan.baseline_runs) | set(baseline_evaluations) | set(plan.manifests) <= set(targets)
    assert not set(plan.mixture_runs) & set(targets), "mixture runs are made for the tables that need them"


def test_a_table_of_the_baseline_alone_has_no_corpora_section(planned):
    config = load("demo")
    config["tables"]["alone"] = ["Baseline"]
    plan = planned(config)
    assert plan.table_corpora["alone"] == []
    assert "alone" not in plan.corpora_sections and "main" in plan.corpora_sections


def test_the_plan_imports_no_torch():
    """The Snakefile builds the plan each time Snakemake parses it, and importing torch costs seconds."""
    code = "import sys, cdsynth.spec.plan; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_field_of_a_source_reaches_the_corpus_job(planned):
    """The corpus rule once passed a source's format, units and cap but not how the cap counts words, so
    the paper preset's TinyStories cut counted by whitespace, not by split(" ") as the authors did."""
    config = load("paper")
    sources = planned(config).corpus_sources
    for name, entry in config["corpus"]["sources"].items():
        for key, value in entry.items():
            if key not in ("train", "test"):
                assert sources[name][key] == value, f"{name}.{key}"
    assert sources["tinystories"]["max_words_count"] == "space"
