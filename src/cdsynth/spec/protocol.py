"""The generation protocol of a synthetic corpus, and the checks every caller runs before loading a model.

The workflow (config checks, when the Snakefile loads) and `cdsynth generate` (before it loads a model)
build the same `Protocol`, so both refuse the same settings with the same messages. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from cdsynth.errors import ConfigError
from cdsynth.spec.settings import DTYPES, bound_problems, setting

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

    tokens: int | str = setting(
        100_000_000, whole=True, minimum=1, also=(ALL,), help="new tokens to generate, or all: every prompt"
    )
    prefix_tokens: int = setting(
        19,
        whole=True,
        minimum=0,
        help="real prompt tokens kept after BOS (the paper's max_length 20 with BOS is 19; 0: BOS alone)",
    )
    continuations: int = setting(8, whole=True, minimum=1, help="samples per prompt")
    new_tokens: int = setting(400, whole=True, minimum=1, help="tokens per sample (no stop at EOS)")
    keep_prefix: bool = setting(
        True, help="keep the real prefix in each saved sample (--no-keep-prefix: the generated tokens alone)"
    )
    shards: int = setting(20, whole=True, minimum=1, help="number of shard files")
    batch_size: int | str = setting(
        "auto",
        whole=True,
        minimum=1,
        also=("auto",),
        help="sequences decoded together, or auto: 64 on CPU, as many as the free memory holds on CUDA",
    )
    seed: int = setting(0, whole=True, minimum=0, help="corpus seed (shard i samples from (seed, i))")
    prompt_seed: int = setting(42, whole=True, minimum=0, help="shuffle of the prompts")
    dtype: str = setting(
        "float32",
        choices=DTYPES,
        help="generation precision: float32 (TF32 matmuls on GPU, as the paper) or bfloat16 (faster on GPU)",
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid generation settings:\n  " + "\n  ".join(problems))

    def problems(self) -> list[str]:
        """One line per bad field (its declared bounds), then whether the shards all get prompts."""
        lines = bound_problems(self)
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


def protocol_from(params: dict[str, Any]) -> Protocol:
    """The protocol fields of a flat settings dict (the config's `synth` section, a rule's params)."""
    return Protocol(**{field.name: params[field.name] for field in fields(Protocol) if field.name in params})
