"""What defines a synthetic corpus: scoring settings, amateur and backend, and the names derived from them.

Nothing here imports torch: the Snakefile reads these definitions every time it is parsed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from cdsynth.errors import ConfigError

BACKENDS = ("torch", "vllm")
METHODS = ("ancestral", "vhead", "cd")


@dataclass(frozen=True)
class Scoring:
    """How next-token scores are formed; the defaults are the paper's."""

    method: str = "cd"
    alpha: float = 0.1
    strength: float = 1.0
    temperature: float = 1.0
    penalty: float = -20.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if not 0 < self.alpha < 1:
            problems.append(f"alpha: {self.alpha} must be in (0, 1)")
        if self.strength < 0:
            problems.append(f"strength: {self.strength} must be >= 0")
        if not self.temperature > 0:
            problems.append(f"temperature: {self.temperature} must be > 0")
        if math.isnan(self.penalty) or self.penalty > 0:
            problems.append(f"penalty: {self.penalty} must be <= 0 (or -inf)")
        if self.top_k is not None and self.top_k < 1:
            problems.append(f"top_k: {self.top_k} must be >= 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            problems.append(f"top_p: {self.top_p} must be in (0, 1]")
        if problems:
            raise ConfigError("invalid scoring settings:\n  " + "\n  ".join(problems))

    @property
    def needs_amateur(self) -> bool:
        return self.method == "cd"

    @property
    def cut_value(self) -> float:
        """What a truncated entry scores: the penalty for head methods, -inf for plain sampling."""
        return float("-inf") if self.method == "ancestral" else self.penalty

    def as_dict(self) -> dict:
        return asdict(self)


def corpus_name(scoring: Scoring, amateur: str | None) -> str:
    """A readable directory name that changes whenever a scoring parameter does."""
    parts = [scoring.method]
    if scoring.needs_amateur:
        parts += [amateur.replace(":", "-"), f"s{scoring.strength:g}"]
    if scoring.method != "ancestral":
        parts += [f"a{scoring.alpha:g}", f"pen{scoring.penalty:g}"]
    if scoring.top_k is not None:
        parts.append(f"k{scoring.top_k}")
    if scoring.top_p is not None:
        parts.append(f"p{scoring.top_p:g}")
    if scoring.temperature != 1:
        parts.append(f"T{scoring.temperature:g}")
    return "_".join(parts)


def backend_for(backend: str, amateur_dropout: float | None) -> str:
    """The backend that can make the corpus: vLLM's attention kernels have no dropout amateur."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    return "torch" if amateur_dropout is not None else backend
