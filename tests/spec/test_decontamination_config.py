"""The decontamination switches: off, nothing changes; on, the filtered copies are what is trained on."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cdsynth.errors import ConfigError
from cdsynth.spec.config import validate_config
from cdsynth.spec.decontamination import DECONTAMINATED_TRAIN, DECONTAMINATED_TRAIN_STATS
from cdsynth.spec.eval_data import TASK_DIRS
from cdsynth.spec.paths import corpus_split
from cdsynth.spec.plan import plan_of

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIGS = [REPO / "config.yaml", REPO / "workflow/presets/mini.yaml", REPO / "workflow/presets/paper.yaml"]


def with_filter(path: Path, **sections: bool) -> dict:
    config = yaml.safe_load(path.read_text())
    for section, on in sections.items():
        config[section]["decontaminate"] = on
    return config


@pytest.fixture
def plan(shared_data, monkeypatch):
    """A config's plan, checked first as the Snakefile checks it (its data paths are the project's)."""
    monkeypatch.chdir(REPO)

    def planned(config: dict):
        validate_config(config, SCHEMA)
        return plan_of(config)

    return planned


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_the_filter_off_or_absent_plans_the_same_jobs_with_the_same_params(plan, path):
    absent, off = plan(with_filter(path)), plan(with_filter(path, corpus=False, synth=False))
    assert absent == off
    assert absent.decontaminated == [] and absent.train_split == corpus_split("train")
    assert list(absent.token_sources.values()) == absent.manifests


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_the_synthetic_filter_changes_what_is_trained_on_and_no_corpus(plan, path):
    off, on = plan(with_filter(path)), plan(with_filter(path, synth=True))
    assert on.corpora == off.corpora, "a corpus is generated alike with the filter on or off"
    assert on.mixture_runs == off.mixture_runs and on.budgets == off.budgets
    filtered = [
        manifest.replace("/manifest.json", "/decontaminated/manifest.json") for manifest in off.manifests
    ]
    assert list(on.token_sources.values()) == filtered
    assert on.decontaminated == filtered and set(filtered) <= set(on.targets)
    corpora = {export["corpus"][0] for export in on.exports.values() if export["corpus"]}
    assert corpora == set(filtered), "an export describes the corpus its model trained on"
    assert on.train_split == corpus_split("train")


def test_the_real_filter_feeds_the_tokenizer_and_the_train_token_shards(plan):
    on = plan(with_filter(REPO / "config.yaml", corpus=True))
    assert on.train_split == on.split_source("train") == DECONTAMINATED_TRAIN
    assert on.split_source("test") == corpus_split("test")
    assert on.decontaminated == [DECONTAMINATED_TRAIN_STATS] and DECONTAMINATED_TRAIN_STATS in on.targets
    assert list(on.token_sources.values()) == on.manifests


def rejected(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    return str(err.value)


@pytest.mark.parametrize("section", ["corpus", "synth"])
def test_a_filter_without_evaluation_data_is_refused_naming_the_switch_and_the_fix(tmp_path, section):
    config = with_filter(REPO / "config.yaml", **{section: True})
    config["eval"]["data_dir"] = str(tmp_path / "nowhere")
    message = rejected(config)
    assert (
        f"{section}.decontaminate: filtering" in message and f"eval.data_dir ({tmp_path}/nowhere)" in message
    )
    assert f"set {section}.decontaminate: false" in message
    config[section]["decontaminate"] = False
    validate_config(config, SCHEMA)  # off, the missing folder is left to the evaluation's own check


def test_a_task_without_files_is_named(tmp_path):
    for task, name in TASK_DIRS.items():
        folder = tmp_path / name
        folder.mkdir()
        if task == "reading":
            (folder / "reading_data.csv").write_text("sentence\n")
        elif task != "wug":
            (folder / "items.jsonl").write_text("{}\n")
    config = copy.deepcopy(with_filter(REPO / "config.yaml", synth=True))
    config["eval"]["data_dir"] = str(tmp_path)
    assert "which has no files for wug" in rejected(config)


@pytest.mark.parametrize("section", ["corpus", "synth"])
def test_the_switch_is_a_boolean(section):
    config = with_filter(REPO / "config.yaml")
    config[section]["decontaminate"] = "yes"
    assert f"{section}.decontaminate: 'yes' is not of type 'boolean'" in rejected(config)
