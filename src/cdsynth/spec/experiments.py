"""The experiments a config compares: GOOD, each experiment's corpus and mixture, and the tables.

Built from a validated config by the Snakefile and the config checks alike, so both see the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdsynth.spec.mixture import Mixture
from cdsynth.spec.synthesis import Corpus, Good


@dataclass(frozen=True)
class Experiment:
    """A table row: the baseline (no corpus, no mixture), or a corpus mixed in at a ratio."""

    name: str
    corpus: Corpus | None = None
    mixture: Mixture | None = None


def good_of(config: dict[str, Any]) -> Good:
    return Good(**config["synth"]["good"])


def experiments_of(config: dict[str, Any]) -> dict[str, Experiment]:
    """Every experiment of the config by name, in config order."""
    good = good_of(config)
    last = config["train"]["steps"]  # the last step is always saved
    mix = config["mix"]
    out = {}
    for name, spec in config["experiments"].items():
        if not spec.get("corpus"):
            out[name] = Experiment(name)
            continue
        mixture = Mixture(spec.get("ratio", mix["ratio"]), mix["rounding"])
        out[name] = Experiment(name, Corpus.from_spec(spec["corpus"], good, last), mixture)
    return out
