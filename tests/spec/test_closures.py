"""The import graph is the rerun graph: each job's script reaches only the code its stage runs.

A rule's `code` param digests every package module its script imports, directly or not, so an import
that crossed a stage line would make an edit there rerun jobs it cannot affect.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, tiny_config

from cdsynth.spec.code_digest import import_closure

KERNEL = {"errors.py", "io.py", "jobs.py", "checkpoints.py", "resumable.py", "threads.py"}
# The stages whose modules each script may reach, and must: nothing else.
STAGES = {
    "download.py": {"spec", "data"},
    "build_corpus.py": {"spec", "data"},
    "train_tokenizer.py": {"data"},
    "build_shards.py": {"data"},
    "count_budget.py": {"spec", "data", "train"},
    "train_model.py": {"spec", "data", "train"},
    "synthesize_shard.py": {"spec", "synth"},
    "write_manifest.py": {"synth"},
    "describe_corpus.py": {"spec", "synth", "describe"},
    "describe_real_corpus.py": {"spec", "describe"},
    # The filters: the real split's never reaches the synthetic shard format or the card.
    "decontaminate_real_corpus.py": {"spec", "describe"},
    "decontaminate_corpus.py": {"spec", "synth", "describe"},
    "build_synthetic_shards.py": {"data", "synth"},
    "evaluate_run.py": {"spec", "eval"},
    "summarize_experiment.py": {"spec", "eval", "report"},
    "write_table.py": {"spec", "eval", "report"},
    "plot_ratio_sweep.py": {"spec", "eval", "report"},
    "describe_corpora.py": {"report"},
    "write_budget_table.py": {"spec", "report"},
    "export_run.py": {"spec", "synth", "describe", "export"},
}
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def modules(script: Path) -> set[str]:
    """The package modules in a script's closure, as paths under src/cdsynth/."""
    return {
        label.removeprefix("cdsynth/") for label in import_closure(script) if label.startswith("cdsynth/")
    }


def test_every_script_is_pinned():
    assert sorted(script.name for script in SCRIPTS) == sorted(STAGES)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_a_scripts_closure_holds_only_its_stages(script):
    reached = modules(script)
    stages = {module.split("/")[0] for module in reached if "/" in module}
    assert stages == STAGES[script.name]
    assert {module for module in reached if "/" not in module} <= KERNEL


def test_figures_are_reached_only_by_the_scripts_that_draw_them():
    drawing = {script.name for script in SCRIPTS if "report/figures.py" in modules(script)}
    assert drawing == {"write_table.py", "plot_ratio_sweep.py", "describe_corpora.py"}
    assert {script.name for script in SCRIPTS if "train/curve.py" in modules(script)} == {"train_model.py"}


def test_the_cd_scoring_is_reached_by_synthesis_alone():
    using = {script.name for script in SCRIPTS if "synth/scoring.py" in modules(script)}
    assert using == {"synthesize_shard.py"}


def test_the_snakefile_imports_no_torch(tmp_path, corpus_dir):
    """Snakemake parses the Snakefile for every command, and importing torch costs seconds."""
    poison = tmp_path / "poison"
    (poison / "torch").mkdir(parents=True)
    (poison / "torch" / "__init__.py").write_text("raise ImportError('the Snakefile imported torch')\n")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(corpus_dir)))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "-n",
        "--cores",
        "1",
    ]
    command += ["--directory", str(workdir), "--configfile", str(workdir / "config.yaml")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(poison), str(REPO / "src")])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Job stats" in result.stdout
