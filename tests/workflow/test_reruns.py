"""What reruns after a code edit, on the paper preset with every output faked up to date.

Each rule's `code` param digests its script and the package modules the script imports, so an edit
reruns exactly the jobs whose code it touches, and what follows from their outputs.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from helpers import REPO, checkout, dry_run_from, fake_finished_run, snakemake, tiny_config

PAPER = REPO / "workflow/presets/paper.yaml"
# Dry runs of the paper preset after each edit: minutes, outside the fast tier (`pytest -m "not slow"`).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A fresh copy of the project and, beside it, a faked finished run of the paper preset."""
    root = tmp_path_factory.mktemp("paper")
    copy = checkout(root)
    # The preset's data paths (../shared/data) resolve from the working directory, as from the project.
    workdir = REPO.parent / f".{root.name}-run"
    fake_finished_run(workdir, PAPER)
    yield copy, workdir
    shutil.rmtree(workdir)


def edited(copy, module: str, line: str = "UNUSED = 1") -> None:
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}\n")


def restored(copy, module: str, line: str = "UNUSED = 1") -> None:
    path = copy / module
    path.write_text(path.read_text().removesuffix(f"\n{line}\n"))


def test_a_plain_dry_run_of_a_fresh_clone_next_to_finished_results_plans_nothing(finished):
    copy, workdir = finished
    assert dry_run_from(copy, workdir, PAPER) == {}


@pytest.mark.parametrize(
    ("module", "planned"),
    [
        # A figure: only the tables and the corpora sections (which draw it) and the ratio sweeps after them.
        ("src/cdsynth/report/figures.py", {"table": 5, "ratio_sweep": 1, "corpora": 5}),
        # The corpus statistics: each corpus's description and the real train split's, the corpora
        # sections and the tables that take them in (so that a table target builds its section), no
        # mixture run.
        (
            "src/cdsynth/describe/measures.py",
            {"describe_corpus": 25, "describe_real_corpus": 1, "corpora": 5, "table": 5, "ratio_sweep": 1},
        ),
        # The CD scoring: every corpus and what is made from it (a mixture's budget counts its synthetic
        # words); no baseline run, its budget or its evaluation.
        (
            "src/cdsynth/synth/scoring.py",
            {"synth_shard": 500, "synth_manifest": 25, "synth_tokens": 25, "budget": 300,
             "train_mixture": 300, "evaluate": 300, "experiment_summary": 30, "table": 5, "ratio_sweep": 1,
             "describe_corpus": 25, "corpora": 5, "budget_table": 5},
        ),
        # The trainer: every run, and so every corpus made from GOOD, and every evaluation after them; the
        # baseline runs' budgets are not recounted (the trainer is not in the count's code), the mixtures'
        # are (their synthetic data and GOOD changed).
        (
            "src/cdsynth/train/trainer.py",
            {"train_baseline": 11, "synth_shard": 500, "synth_manifest": 25, "synth_tokens": 25,
             "budget": 300, "train_mixture": 300, "evaluate": 311, "experiment_summary": 31, "table": 5,
             "ratio_sweep": 1, "describe_corpus": 25, "corpora": 5, "budget_table": 5},
        ),
        # The word count: every budget and so every run; the corpora follow from GOOD's retraining.
        (
            "src/cdsynth/train/budget.py",
            {"budget": 311, "train_baseline": 11, "synth_shard": 500, "synth_manifest": 25,
             "synth_tokens": 25, "train_mixture": 300, "evaluate": 311, "experiment_summary": 31,
             "table": 5, "ratio_sweep": 1, "describe_corpus": 25, "corpora": 5, "budget_table": 5},
        ),
        # The evaluation suite: evaluations and the statistics after them, nothing trained or generated.
        (
            "src/cdsynth/eval/suite.py",
            {"evaluate": 311, "experiment_summary": 31, "table": 5, "ratio_sweep": 1},
        ),
    ],
)  # fmt: skip
def test_a_code_edit_reruns_only_the_jobs_it_changes(finished, module, planned):
    copy, workdir = finished
    edited(copy, module)
    try:
        counts = dry_run_from(copy, workdir, PAPER)
    finally:
        restored(copy, module)
    assert {rule: n for rule, n in counts.items() if rule not in ("all", "total")} == planned


def test_the_default_profile_keeps_a_clusters_own_resources(tmp_path, corpus_dir):
    """profiles/default is loaded on top of any --profile: it sets the rerun triggers and nothing else."""
    config = tiny_config(corpus_dir)
    result = snakemake(tmp_path, config, "-n", "results/tokenizer", "--profile", "workflow/profiles/slurm")
    assert result.returncode == 0, result.stderr[-2000:]
    resources = [line for line in result.stdout.splitlines() if line.strip().startswith("resources:")]
    assert resources and all("slurm_partition=CHANGE-ME" in line for line in resources)
    default = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert default == {"rerun-triggers": ["mtime", "params", "input", "software-env"]}
