"""Configuration checks run when the Snakefile loads, before any job: schema, then cross-field rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cdsynth.errors import ConfigError


def field_name(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def schema_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{field_name(e.absolute_path)}: {e.message}" for e in errors]


def cross_field_errors(config: dict[str, Any]) -> list[str]:
    """Rules a JSON schema cannot express: relations between fields."""
    problems = []
    train, corpus = config["train"], config["corpus"]
    if train["batch_size"] % train["micro_batch_size"]:
        problems.append(
            f"train.batch_size: {train['batch_size']} is not a multiple of "
            f"train.micro_batch_size ({train['micro_batch_size']})"
        )
    if corpus["seed_fraction"] + corpus["test_fraction"] >= 1:
        problems.append("corpus.test_fraction: seed_fraction + test_fraction must be below 1")
    for name, arch in config["models"].items():
        if arch["hidden"] % arch["heads"]:
            problems.append(f"models.{name}.heads: {arch['heads']} does not divide hidden ({arch['hidden']})")
        if arch["heads"] % arch.get("kv_heads", arch["heads"]):
            problems.append(f"models.{name}.kv_heads: must divide heads ({arch['heads']})")
        if arch["max_positions"] < config["shards"]["block_size"]:
            problems.append(
                f"models.{name}.max_positions: {arch['max_positions']} is below "
                f"shards.block_size ({config['shards']['block_size']})"
            )
    for name in config["baseline"]:
        if name not in config["models"]:
            known = ", ".join(sorted(config["models"]))
            problems.append(f"baseline.{name}: no such model in `models` (known: {known})")
    return problems


def validate_config(config: dict[str, Any], schema_path: str | os.PathLike) -> None:
    """Raise ConfigError listing every problem, one line per field, or return silently."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    problems = schema_errors(config, schema) or cross_field_errors(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
