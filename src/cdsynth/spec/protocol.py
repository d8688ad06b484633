"""The generation protocol of a synthetic corpus, and the checks every caller runs before loading a model.

The workflow (config checks, when the Snakefile loads) and `cdsynth generate` (before it loads a model)
build the same `Protocol`, so both refuse the same settings with the same messages. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from cdsynth.errors import ConfigError

DTYPES = ("float32", "bfloat16")
ALL = "all"  # `tokens`: continue every prompt


@dataclass(frozen=True)
class Protocol:
    """How prompts are made and continued; the defaults are the paper's.

    `tokens` is the corpus size in new tokens, or "all": every prompt of the seed split, as the authors
    continue every one. `prefix_tokens` counts the real tokens after BOS: the authors tokenize seeds with
    `max_length=20` including BOS, which is BOS + 19 (0 leaves BOS alone: unconditional samples).
    `dtype` is the generation precision ("float32": fp32 weights with TF32 matmuls on GPU, as the
    authors generated; "bfloat16"). `batch_size` is rows decoded together, or "auto": 64 on CPU, as many
    as fit on CUDA.
    """

    tokens: int | str = 100_000_000
    prefix_tokens: int = 19
    continuations: int = 8
    new_tokens: int = 400
    keep_prefix: bool = True
    shards: int = 20
    batch_size: int | str = "auto"
    seed: int = 0
    prompt_seed: int = 42
    dtype: str = "float32"

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid generation settings:\n  " + "\n  ".join(problems))

    def problems(self) -> list[str]:
        """One line per bad field: counts are positive integers, seeds and the prefix non-negative."""
        lines = []
        for field in fields(self):
            value, least = getattr(self, field.name), MINIMA.get(field.name)
            if least is None or (field.name, value) in (("batch_size", "auto"), ("tokens", ALL)):
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                lines.append(f"{field.name}: {value!r} must be a whole number")
            elif value < least:
                lines.append(f"{field.name}: {value} must be >= {least}")
        if self.dtype not in DTYPES:
            lines.append(f"dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if not lines and self.tokens != ALL and self.shards > self.prompts_for(self.shards):
            prompts = self.prompts_for(self.shards)
            lines.append(
                f"shards: {self.shards} shards for {prompts} prompt(s) would leave empty shards "
                f"({self.tokens:,} tokens = {prompts} prompts x {self.continuations} continuations "
                f"x {self.new_tokens} tokens); use at most {prompts} shards"
            )
        return lines

    def prompts_for(self, available: int) -> int:
        """Prompts the corpus continues, given `available` ones: all of them with `tokens: all`, else as
        many as the token budget needs (which may be more than there are)."""
        if self.tokens == ALL:
            return available
        return math.ceil(self.tokens / (self.continuations * self.new_tokens))

    @property
    def length(self) -> int:
        """Positions a sample occupies: BOS, the real prefix and the new tokens."""
        return 1 + self.prefix_tokens + self.new_tokens

    def position_errors(self, limits: dict[str, int]) -> list[str]:
        """A line for each position limit (named as the caller's field) below what a sample needs."""
        return [
            f"BOS + prefix + new tokens = {self.length} exceeds {name} ({limit}); lower the new or prefix "
            "tokens"
            for name, limit in limits.items()
            if self.length > limit
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


MINIMA = {
    "tokens": 1,
    "prefix_tokens": 0,
    "continuations": 1,
    "new_tokens": 1,
    "shards": 1,
    "batch_size": 1,
    "seed": 0,
    "prompt_seed": 0,
}


def protocol_from(params: dict[str, Any]) -> Protocol:
    """The protocol fields of a flat settings dict (the config's `synth` section, a rule's params)."""
    return Protocol(**{field.name: params[field.name] for field in fields(Protocol) if field.name in params})


def protocol_errors(params: dict[str, Any]) -> list[str]:
    """`protocol_from`'s problems as lines, for callers that gather every problem before refusing."""
    try:
        protocol_from(params)
    except ConfigError as err:
        return [line.strip() for line in str(err).splitlines()[1:]]
    return []
