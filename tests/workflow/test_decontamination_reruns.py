"""The decontamination switches on a finished run: flipping one reruns only what trains on its data."""

from __future__ import annotations

import pytest
import yaml
from helpers import REPO, dry_run_from, fake_finished_run, tiny_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory, corpus_dir):
    """A faked finished run of the tiny config, its filters off (dry runs only: seconds)."""
    workdir = tmp_path_factory.mktemp("decontamination")
    config = tiny_config(corpus_dir)
    config["babylm"]["track"] = "none"  # the faked corpus statistics are empty files
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    fake_finished_run(workdir, workdir / "config.yaml")
    return workdir, config


def planned(workdir, config, **sections: bool) -> dict[str, int]:
    edited = {
        **config,
        **{section: {**config[section], "decontaminate": on} for section, on in sections.items()},
    }
    path = workdir / "edited.yaml"
    path.write_text(yaml.safe_dump(edited))
    counts = dry_run_from(REPO, workdir, path)
    return {rule: n for rule, n in counts.items() if rule not in ("all", "total")}


def test_the_switches_off_rerun_nothing(finished):
    assert planned(*finished, corpus=False, synth=False) == {}


def test_the_synthetic_filter_reruns_the_mixtures_and_no_corpus_or_baseline(finished):
    # 2 corpora; 2 mixtures x 2 seeds
    assert planned(*finished, synth=True) == {
        "decontaminate_corpus": 2, "synth_tokens": 2, "budget": 4, "train_mixture": 4, "evaluate": 4,
        "experiment_summary": 2, "table": 1, "budget_table": 1,
    }  # fmt: skip


def test_the_real_filter_reruns_everything_trained_on_the_split_and_not_its_description(finished):
    counts = planned(*finished, corpus=True)
    assert counts["decontaminate_real_corpus"] == 1 and counts["tokenizer"] == 1
    assert counts["train_baseline"] == 2 and "describe_real_corpus" not in counts and "corpus" not in counts
