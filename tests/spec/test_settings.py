"""One definition per setting: the config schema and the settings dataclasses state the same bounds.

Each settings class declares its fields' bounds once (`cdsynth.spec.settings.setting`); the schema states
them again for the config file. These tests read both and compare them field by field, then check the
values at and beside every bound: the schema accepts a value exactly when the dataclass does.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields

import jsonschema
import pytest
import yaml
from helpers import REPO

from cdsynth.spec.evaluation import Evaluation
from cdsynth.spec.mixture import Mixture
from cdsynth.spec.protocol import Protocol
from cdsynth.spec.settings import value_problem
from cdsynth.spec.sources import Source
from cdsynth.spec.synthesis import Scoring
from cdsynth.spec.training import Architecture, TrainSettings

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
BOUNDS = {
    "minimum": "minimum",
    "exclusiveMinimum": "exclusive_minimum",
    "maximum": "maximum",
    "exclusiveMaximum": "exclusive_maximum",
}


def resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].split("/")[-1]]
    return node


def section(name: str) -> dict:
    """A top-level section of the config, or a definition (`$defs/NAME`)."""
    if name.startswith("$defs/"):
        return SCHEMA["$defs"][name.removeprefix("$defs/")]
    return resolve(SCHEMA["properties"][name])


# (schema object, settings class): every field named in both is compared.
SECTIONS = {
    "corpus_spec": (section("$defs/corpus_spec"), Scoring),
    "synth": (section("synth"), Protocol),
    "mix": (section("mix"), Mixture),
    "architecture": (section("$defs/architecture"), Architecture),
    "train": (section("train"), TrainSettings),
    "shards": (section("shards"), TrainSettings),
    "eval": (section("eval"), Evaluation),
    "source": (section("$defs/source"), Source),
}


def schema_terms(node: dict, required: bool, default) -> dict:
    """A schema property as the settings' metadata states bounds: numeric bounds, whole numbers,
    choices, and the other values accepted besides them (null, constants, absent = the default None)."""
    alternatives = [resolve(alt) for alt in node.get("oneOf", [node])]
    terms = {"bounds": {}, "whole": False, "choices": None, "also": set(), "many": False}
    for alt in alternatives:
        if alt.get("type") == "array":  # a list of distinct choices
            terms["choices"], terms["many"] = tuple(resolve(alt["items"])["enum"]), alt.get("uniqueItems")
        elif alt.get("type") == "null":
            terms["also"].add(None)
        elif "const" in alt:
            terms["also"].add(alt["const"])
        elif "enum" in alt:
            terms["choices"] = tuple(alt["enum"])
        else:
            terms["whole"] = alt.get("type") == "integer"
            terms["bounds"] = {BOUNDS[key]: alt[key] for key in BOUNDS if key in alt}
    if not required and default is None:
        terms["also"].add(None)
    return terms


def choice_list(prop: dict, spec) -> bool:
    """Whether a field is compared: an array only as a list of choices, in the schema or the class."""
    node = resolve(prop)
    return node.get("type") != "array" or "enum" in node["items"] or spec.metadata.get("many")


def field_terms(spec) -> dict:
    meta = spec.metadata
    return {
        "bounds": meta["bounds"],
        "whole": meta["whole"],
        "choices": meta["choices"],
        "also": set(meta["also"]),
        "many": meta["many"],
    }


def shared_fields():
    for name, (node, cls) in SECTIONS.items():
        properties, required = node["properties"], set(node.get("required", []))
        for spec in fields(cls):
            prop = properties.get(spec.name)
            if prop is None or resolve(prop).get("type") == "string" or not choice_list(prop, spec):
                continue  # not in this section; pairs and paths are the schema's alone
            yield pytest.param(name, prop, spec, spec.name in required, id=f"{name}.{spec.name}")


@pytest.mark.parametrize(("section_name", "prop", "spec", "required"), list(shared_fields()))
def test_the_schema_and_the_dataclass_state_the_same_bounds(section_name, prop, spec, required):
    default = None if spec.default is MISSING else spec.default
    assert field_terms(spec) == schema_terms(prop, required, default)


def probes(spec) -> list:
    """Values at and just beside each of the field's bounds, plus its accepted extras."""
    meta = spec.metadata
    if meta["many"]:
        return [[], list(meta["choices"]), ["no-such-choice"], [meta["choices"][0]] * 2, meta["choices"][0]]
    if meta["choices"]:
        return [*meta["choices"], "no-such-choice"]
    values = list(meta["also"])
    step = 1 if meta["whole"] else 1e-9
    for bound in meta["bounds"].values():
        values += [bound - step, bound, bound + step]
    if meta["whole"]:
        values += [1.5]
    return values


@pytest.mark.parametrize(("section_name", "prop", "spec", "required"), list(shared_fields()))
def test_the_schema_accepts_a_value_exactly_when_the_dataclass_does(section_name, prop, spec, required):
    validator = jsonschema.Draft202012Validator({**prop, "$defs": SCHEMA["$defs"]})
    for value in probes(spec):
        if (isinstance(value, float) and math.isinf(value)) or (value is None and not required):
            continue  # an optional key is left out, not written as null
        assert validator.is_valid(value) == (value_problem(spec, value) is None), value


def test_every_settings_class_has_a_field_in_the_schema():
    """A renamed field would silently drop out of the comparison above."""
    for name, (node, cls) in SECTIONS.items():
        assert {spec.name for spec in fields(cls)} & set(node["properties"]), name


def test_prefix_tokens_zero_is_a_valid_config_and_protocol():
    """The disagreement this file was written for: the schema said >= 1, the protocol and CLI >= 0."""
    prop = section("synth")["properties"]["prefix_tokens"]
    assert jsonschema.Draft202012Validator(prop).is_valid(0)
    assert Protocol(prefix_tokens=0).prefix_tokens == 0
