"""Configuration checks run when the Snakefile loads, before any job: schema, then cross-field rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cdsynth.errors import ConfigError
from cdsynth.spec.decontamination import decontamination_errors
from cdsynth.spec.mixture import Mixture
from cdsynth.spec.protocol import protocol_from
from cdsynth.spec.schedule import fixed_steps_of
from cdsynth.spec.settings import problems_of
from cdsynth.spec.synthesis import (
    Amateur,
    Corpus,
    Good,
    Scoring,
    amateur_problem,
    backend_for,
    vllm_problem,
)
from cdsynth.spec.training import Architecture, TrainSettings


def field_name(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _whole_number(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


# JSON Schema counts 40.0 as an integer; a float there would fail later, far from its field.
StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _whole_number),
)


def schema_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = StrictValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{field_name(e.absolute_path)}: {schema_message(e)}" for e in errors]


def schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "type" and error.validator_value == "integer" and isinstance(error.instance, float):
        whole = f" (write {int(error.instance)})" if error.instance.is_integer() else ""
        return f"{error.instance} is not a whole number{whole}"
    return error.message


def cross_field_errors(config: dict[str, Any]) -> list[str]:
    """Rules a JSON schema cannot express: relations between fields."""
    problems = []
    train, corpus = config["train"], config["corpus"]
    if corpus["seed_fraction"] + corpus["test_fraction"] >= 1:
        problems.append("corpus.test_fraction: seed_fraction + test_fraction must be below 1")
    models = {
        name: problems_of(lambda arch=arch: Architecture(**arch)) for name, arch in config["models"].items()
    }
    for name, arch in config["models"].items():
        problems += [f"models.{name}.{line}" for line in models[name]]
        if arch["max_positions"] < config["shards"]["block_size"]:
            problems.append(
                f"models.{name}.max_positions: {arch['max_positions']} is below "
                f"shards.block_size ({config['shards']['block_size']})"
            )
    if not any(models.values()):  # the recipe's own checks, on a model that builds
        recipe = {"block_size": config["shards"]["block_size"], **train}
        arch = next(iter(config["models"].values()))
        problems += [f"train.{line}" for line in problems_of(lambda: TrainSettings.of(recipe, arch, seed=0))]
    tokenizer = config["tokenizer"]
    if tokenizer["recipe"] == "authors" and tokenizer["max_sentences"] is not None:
        problems.append(
            "tokenizer.max_sentences: the authors' recipe trains on every train document; set it to null "
            "(or use recipe: sentencepiece, whose training samples lines)"
        )
    for name in config["baseline"]:
        if name not in config["models"]:
            known = ", ".join(sorted(config["models"]))
            problems.append(f"baseline.{name}: no such model in `models` (known: {known})")
    return problems


def synth_errors(config: dict[str, Any]) -> list[str]:
    """The GOOD checkpoint and every amateur must be something the baseline runs will produce."""
    synth, train = config["synth"], config["train"]
    good = synth["good"]
    steps = fixed_steps_of(train)
    problems = []
    if good["seed"] not in config["baseline"].get(good["model"], []):
        problems.append(f"synth.good: {good['model']} seed {good['seed']} is not a baseline run (`baseline`)")
    if good["step"] != "best" and good["step"] not in steps:
        problems.append(f"synth.good.step: {good['step']} is not a checkpoint step ({steps_text(steps)})")
    gpus = config["resources"]["synth"]["gpus"]
    if synth["tensor_parallel"] > 1 and synth["backend"] != "vllm":
        problems.append("synth.tensor_parallel: only the vllm backend splits a model over GPUs; set it to 1")
    elif gpus and gpus != synth["tensor_parallel"]:
        problems.append(
            f"resources.synth.gpus: {gpus} GPUs per job, but synth.tensor_parallel is "
            f"{synth['tensor_parallel']}; make them equal (one shard per job uses all its GPUs)"
        )
    models = [good["model"]]
    last = steps[-1]
    for name, experiment in config["experiments"].items():
        spec = experiment.get("corpus") or {}
        field = f"experiments.{name}.corpus"
        scoring = scoring_errors(spec)
        problems += [f"{field}.{line}" for line in scoring]
        if scoring:
            continue
        corpus = Corpus.from_spec(spec, Good(**good), last)
        if backend_for(synth["backend"], corpus.amateur_dropout) == "vllm" and vllm_problem(corpus.scoring):
            problems.append(f"{field}.{vllm_problem(corpus.scoring)}")
        if "amateur" not in spec:
            continue
        amateur = corpus.amateur
        problems += [f"{field}.amateur: {line}" for line in amateur_errors(spec, amateur, config, steps)]
        if amateur.kind == "small":
            models.append(amateur.model)
    protocol = problems_of(lambda: protocol_from(synth))
    problems += [f"synth.{line}" for line in protocol]
    if not protocol:
        limits = {
            f"models.{name}.max_positions": config["models"][name]["max_positions"]
            for name in models
            if name in config["models"]
        }
        problems += [f"synth.new_tokens: {line}" for line in protocol_from(synth).position_errors(limits)]
    return problems


def amateur_errors(
    spec: dict[str, Any], amateur: Amateur, config: dict[str, Any], steps: list[int]
) -> list[str]:
    problem = amateur_problem(spec.get("method"), has_amateur=True)
    if problem:
        return [problem]
    if amateur.kind == "small" and amateur.seed not in config["baseline"].get(amateur.model, []):
        return [f"{amateur.model} seed {amateur.seed} is not a baseline run (see `baseline`)"]
    if amateur.kind != "dropout" and amateur.step not in steps:
        return [f"step {amateur.step} is not a checkpoint step ({steps_text(steps)})"]
    return []


def scoring_errors(spec: dict[str, Any]) -> list[str]:
    """The scoring rules' own checks (e.g. ancestral_cut only for ancestral), one line per field."""
    return problems_of(lambda: Scoring(**{key: value for key, value in spec.items() if key != "amateur"}))


def experiment_errors(config: dict[str, Any]) -> list[str]:
    """One baseline, mixture runs the baseline runs can be compared with, and tables of known rows."""
    mix, experiments, train = config["mix"], config["experiments"], config["train"]
    problems = []
    if mix["model"] not in config["models"]:
        problems.append(
            f"mix.model: {mix['model']} is not in `models` (known: {', '.join(config['models'])})"
        )
    missing = [seed for seed in mix["seeds"] if seed not in config["baseline"].get(mix["model"], [])]
    if missing:
        problems.append(
            f"mix.seeds: {missing} are not baseline runs of {mix['model']}; the baseline experiment uses "
            f"them: add them to baseline.{mix['model']}"
        )
    baselines = [name for name, experiment in experiments.items() if not experiment.get("corpus")]
    if len(baselines) != 1:
        problems.append(
            f"experiments: exactly one experiment must have no corpus (the baseline), found {len(baselines)}"
            + (f": {', '.join(baselines)}" if baselines else "")
        )
    for name, experiment in experiments.items():
        ratio = experiment.get("ratio", mix["ratio"])
        floor = Mixture(ratio, mix["rounding"]).floor_problem(train["micro_batch_size"])
        if experiment.get("corpus") and floor:
            problems.append(f"experiments.{name}.ratio: {floor}")
    if "perplexity" not in config["stats"]["tasks"]:
        problems.append("stats.tasks: add perplexity; the ratio-sweep figure plots it")
    for table, rows in config["tables"].items():
        for row in rows:
            if row not in experiments:
                problems.append(
                    f"tables.{table}: {row} is not an experiment (known: {', '.join(experiments)})"
                )
    return problems


def steps_text(steps: list[int]) -> str:
    return ", ".join(map(str, steps[:6])) + (", ..." if len(steps) > 6 else "")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{key_node.start_mark.name}:{line}: key {key!r} is given twice (first on line "
                    f"{seen[key]}); YAML would keep only the last: delete one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def check_config_files(paths: list[str | os.PathLike]) -> None:
    """Refuse config files that are not YAML mappings, or that give a key twice (naming key and line)."""
    for path in paths:
        with open(path) as handle:
            try:
                data = yaml.load(handle, Loader=_UniqueKeyLoader)
            except yaml.YAMLError as err:
                raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a YAML mapping of settings")


def validate_config(config: dict[str, Any], schema_path: str | os.PathLike) -> None:
    """Raise ConfigError listing every problem, one line per field, or return silently."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    problems = schema_errors(config, schema) or (
        cross_field_errors(config)
        + synth_errors(config)
        + experiment_errors(config)
        + decontamination_errors(config)
    )
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
