"""The config schema and cross-field rules: every kind of field rejects a bad value, naming the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cdsynth.errors import ConfigError
from cdsynth.spec.config import check_config_files, validate_config

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())


def cd(config: dict) -> dict:
    return config["experiments"]["CD-Early-50"]["corpus"]


def rejected(edit) -> str:
    config = copy.deepcopy(DEMO)
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    return str(err.value)


@pytest.mark.parametrize("path", [REPO / "config.yaml", *sorted((REPO / "workflow/presets").glob("*.yaml"))])
def test_shipped_configs_are_valid(path):
    validate_config(yaml.safe_load(path.read_text()), SCHEMA)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["train"].update(lr=-1), "train.lr: -1 is less than the minimum of 0"),
        (lambda c: c["train"].update(steps=2.5), "train.steps: 2.5 is not a whole number"),
        (lambda c: c["train"].update(steps=40.0), "train.steps: 40.0 is not a whole number (write 40)"),
        (lambda c: c["synth"].update(shards=20.0), "synth.shards: 20.0 is not a whole number"),
        (lambda c: c["synth"].update(seed=1.0), "synth.seed: 1.0 is not a whole number"),
        (lambda c: c["synth"]["good"].update(seed=43.0), "synth.good.seed: 43.0 is not a whole number"),
        (lambda c: c["train"].update(compile="yes"), "train.compile: 'yes' is not of type 'boolean'"),
        (lambda c: c["tokenizer"].update(recipe="wordpiece"), "tokenizer.recipe: 'wordpiece' is not one of"),
        (lambda c: c["synth"].update(tokens="most"), "synth.tokens: 'most' is not valid"),
        (
            lambda c: c["corpus"]["sources"]["gutenberg"].update(max_words_count="commas"),
            "corpus.sources.gutenberg.max_words_count: 'commas' is not one of",
        ),
        (lambda c: c["train"].update(betas=[0.9]), "train.betas: [0.9] is too short"),
        (
            lambda c: c["corpus"].update(seed_fraction=1.5),
            "corpus.seed_fraction: 1.5 is greater than or equal",
        ),
        (
            lambda c: c["corpus"]["sources"]["wikipedia"].update(format="csv"),
            "corpus.sources.wikipedia.format",
        ),
        (
            lambda c: c["corpus"]["sources"]["wikipedia"].update(max_words=0),
            "corpus.sources.wikipedia.max_words",
        ),
        (
            lambda c: c["corpus"]["sources"]["wikipedia"].update(train=[]),
            "corpus.sources.wikipedia.train: [] ",
        ),
        (lambda c: c["corpus"]["sources"]["wikipedia"].update(train=[{"url": "ssh://x"}]), "train.0"),
        (lambda c: c["tokenizer"].pop("vocab_size"), "tokenizer: 'vocab_size' is a required property"),
        (lambda c: c["shards"].update(block_size=4), "shards.block_size: 4 is less than the minimum of 8"),
        (
            lambda c: c["models"]["tiny"].update(layers=0),
            "models.tiny.layers: 0 is less than the minimum of 1",
        ),
        (lambda c: c["baseline"].update(tiny=[42, 42]), "baseline.tiny: [42, 42] has non-unique elements"),
        (
            lambda c: c["resources"]["train"].update(gpus=-1),
            "resources.train.gpus: -1 is less than the minimum",
        ),
        (lambda c: c.update(extra_section={}), "'extra_section' was unexpected"),
        (
            lambda c: c["corpus"]["sources"]["wikipedia"].update(units="sentences"),
            "corpus.sources.wikipedia.units: 'sentences' is not one of",
        ),
        (lambda c: c["train"].update(packing="random"), "train.packing: 'random' is not one of"),
        (lambda c: c["train"].update(loggers=["neptune"]), "train.loggers.0: 'neptune' is not one of"),
        (lambda c: c["train"].update(loggers="tensorboard"), "train.loggers: 'tensorboard' is not of type"),
        (
            lambda c: c["train"].update(loggers=["tensorboard", "tensorboard"]),
            "train.loggers: ['tensorboard', 'tensorboard'] has non-unique elements",
        ),
        (lambda c: c["synth"].update(dtype="float16"), "synth.dtype: 'float16' is not one of"),
        (lambda c: c["synth"].update(batch_size="max"), "synth.batch_size: 'max' is not valid"),
        (lambda c: c["mix"].update(synthetic_holdout=1), "mix.synthetic_holdout: 1 is greater than or equal"),
        (lambda c: c["shards"].pop("tokens_per_shard"), "shards: 'tokens_per_shard' is a required property"),
        (lambda c: cd(c).update(amateur="small:a/b"), "experiments.CD-Early-50.corpus.amateur: 'small:a/b'"),
    ],
)
def test_schema_rejects_a_bad_value_naming_the_field(edit, message):
    assert message in rejected(edit)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["train"].update(batch_size=20), "train.batch_size: 20 is not a multiple of"),
        (lambda c: c["corpus"].update(seed_fraction=0.5, test_fraction=0.5), "corpus.test_fraction"),
        (lambda c: c["models"]["tiny"].update(heads=5), "models.tiny.heads: 5 does not divide hidden"),
        (lambda c: c["models"]["tiny"].update(max_positions=32), "models.tiny.max_positions: 32 is below"),
        (lambda c: c["baseline"].update(giant=[1]), "baseline.giant: no such model in `models`"),
        (
            lambda c: c["tokenizer"].update(max_sentences=1000),
            "tokenizer.max_sentences: the authors' recipe trains on every train document",
        ),
    ],
)
def test_cross_field_rules_name_the_field(edit, message):
    assert message in rejected(edit)


def test_every_seed_prompt_is_a_valid_corpus_size():
    config = copy.deepcopy(DEMO)
    config["synth"]["tokens"] = "all"
    config["tokenizer"].update(recipe="sentencepiece", max_sentences=1000)
    validate_config(config, SCHEMA)


def test_every_problem_is_listed_at_once():
    text = rejected(lambda c: (c["train"].update(lr=-1), c["shards"].update(block_size=1)))
    assert "train.lr" in text and "shards.block_size" in text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["synth"]["good"].update(seed=7), "synth.good: tiny seed 7 is not a baseline run"),
        (lambda c: c["synth"]["good"].update(step=123), "synth.good.step: 123 is not a checkpoint step"),
        (lambda c: cd(c).update(amateur="early:77"), "experiments.CD-Early-50.corpus.amateur: step 77"),
        (lambda c: cd(c).update(amateur="small:huge"), "CD-Early-50.corpus.amateur: huge seed 43 is not"),
        (
            lambda c: cd(c).update(amateur="small:tiny@seed7"),
            "experiments.CD-Early-50.corpus.amateur: tiny seed 7 is not a baseline run",
        ),
        (
            lambda c: cd(c).update(amateur="small:tiny@seed43/step260"),
            "experiments.CD-Early-50.corpus.amateur: step 260 is not a checkpoint step",
        ),
        (
            lambda c: cd(c).update(ancestral_cut=-20),
            "experiments.CD-Early-50.corpus.ancestral_cut: only ancestral sampling uses it",
        ),
        (
            lambda c: c["experiments"]["No-Contrast"]["corpus"].update(amateur="early:200"),
            "only the `cd` method uses an amateur",
        ),
        (lambda c: c["synth"].update(new_tokens=400), "exceeds models.tiny.max_positions (256)"),
        (lambda c: cd(c).pop("amateur"), "experiments.CD-Early-50.corpus: 'amateur' is a required property"),
        (lambda c: cd(c).update(alpha=1.0), "experiments.CD-Early-50.corpus.alpha"),
        (lambda c: cd(c).update(top_p=0), "experiments.CD-Early-50.corpus.top_p"),
        (lambda c: cd(c).update(top_k=0), "experiments.CD-Early-50.corpus.top_k"),
        (lambda c: cd(c).update(amateur="dropout:1.5"), "experiments.CD-Early-50.corpus.amateur"),
        (lambda c: c["synth"].update(backend="jax"), "synth.backend: 'jax' is not one of"),
        (lambda c: c["synth"].update(tensor_parallel=2), "synth.tensor_parallel: only the vllm backend"),
        (
            lambda c: (
                c["synth"].update(backend="vllm", tensor_parallel=2),
                c["resources"]["synth"].update(gpus=1),
            ),
            "resources.synth.gpus: 1 GPUs per job, but synth.tensor_parallel is 2",
        ),
        (
            lambda c: (c["synth"].update(backend="vllm"), cd(c).update(no_repeat_ngram=3)),
            "experiments.CD-Early-50.corpus.no_repeat_ngram: the vllm backend cannot apply it",
        ),
        (
            lambda c: (c["synth"].update(backend="vllm"), cd(c).update(repetition_penalty=1.2)),
            "experiments.CD-Early-50.corpus.repetition_penalty: the vllm backend cannot apply it",
        ),
        (lambda c: cd(c).update(min_p=1.5), "experiments.CD-Early-50.corpus.min_p"),
        (
            lambda c: c["experiments"]["No-Contrast"]["corpus"].update(amateur_temperature=2.0),
            "experiments.No-Contrast.corpus.amateur_temperature: only the `cd` method has an amateur",
        ),
    ],
)
def test_synthesis_settings_are_checked_against_the_runs(edit, message):
    assert message in rejected(edit)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["mix"].update(model="huge"), "mix.model: huge is not in `models`"),
        (lambda c: c["mix"].update(seeds=[42, 7]), "mix.seeds: [7] are not baseline runs of tiny"),
        (lambda c: c["mix"].update(rounding="ceil"), "mix.rounding: 'ceil' is not one of"),
        (lambda c: c["mix"].update(ratio=1.2), "mix.ratio: 1.2 is greater than or equal"),
        (lambda c: c["experiments"]["No-Contrast"].update(ratio=0), "experiments.No-Contrast.ratio"),
        (lambda c: c["experiments"].update(Other={}), "exactly one experiment must have no corpus"),
        (
            lambda c: c["experiments"].pop("Baseline"),
            "exactly one experiment must have no corpus (the baseline), found 0",
        ),
        (lambda c: c["experiments"].update({"bad name": {}}), "'bad name' does not match"),
        (
            lambda c: c["tables"]["main"].append("CD-Early-999"),
            "tables.main: CD-Early-999 is not an experiment",
        ),
        (
            lambda c: (c["mix"].update(rounding="paper"), c["experiments"]["No-Contrast"].update(ratio=0.05)),
            "experiments.No-Contrast.ratio: 0.05 of a micro batch of 16 floors to no synthetic sequence",
        ),
        (lambda c: c["stats"].update(bootstrap_samples=5), "stats.bootstrap_samples: 5 is less than"),
    ],
)
def test_experiments_and_tables_are_checked(edit, message):
    assert message in rejected(edit)


def test_a_small_amateur_may_name_another_seed_and_step_of_a_baseline_run():
    config = copy.deepcopy(DEMO)
    cd(config).update(amateur="small:tiny@seed43/step200")
    validate_config(config, SCHEMA)


def test_a_key_given_twice_is_refused_naming_the_key_and_both_lines(tmp_path):
    """PyYAML keeps the last of two `tables:` keys, which silently cut the table."""
    path = tmp_path / "config.yaml"
    path.write_text((REPO / "config.yaml").read_text() + "tables:\n  main: [Baseline]\n")
    lines = path.read_text().splitlines()
    first = next(number for number, line in enumerate(lines, 1) if line.startswith("tables:"))
    with pytest.raises(
        ConfigError,
        match=rf"config.yaml:{len(lines) - 1}: key 'tables' is given twice "
        rf"\(first on line {first}\)",
    ):
        check_config_files([path])
    nested = tmp_path / "nested.yaml"
    nested.write_text("train:\n  steps: 10\n  lr: 0.1\n  steps: 20\n")
    with pytest.raises(ConfigError, match="nested.yaml:4: key 'steps' is given twice"):
        check_config_files([nested])
    check_config_files([REPO / "config.yaml", REPO / "workflow/presets/paper.yaml"])


def test_the_generation_settings_share_the_commands_checks():
    """The workflow builds the same Protocol as `cdsynth generate`: shards beyond the prompts are refused."""
    message = rejected(lambda c: c["synth"].update(shards=10**6))
    assert "synth.shards: 1000000 shards for" in message and "would leave empty shards" in message
