"""What defines a mixture run's synthetic data: the ratio of synthetic sequences and how it is rounded."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from cdsynth.errors import ConfigError

ROUNDINGS = ("exact", "paper")


@dataclass(frozen=True)
class Mixture:
    """The share `ratio` of a run's training sequences that come from the synthetic corpus.

    `exact` meets the ratio over the run; `paper` floors it per device micro batch, as the authors' code
    did (16 x 0.3 -> 4 of 16, so their "30%" was 25%).
    """

    ratio: float
    rounding: str = "exact"

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1:
            raise ConfigError(f"ratio: {self.ratio} must be in (0, 1)")
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"rounding: {self.rounding!r} is not one of {', '.join(ROUNDINGS)}")

    def per_micro_batch(self, micro_batch_size: int) -> int:
        """`paper` rounding's synthetic sequences in each micro batch: floor(micro x ratio)."""
        return int(micro_batch_size * Fraction(str(self.ratio)))

    def share(self, micro_batch_size: int) -> float:
        """The share of training sequences that are synthetic: `ratio` (exact), or the floored count of a
        micro batch over its size (paper: 16 x 0.3 -> 4 of 16 = 0.25)."""
        if self.rounding == "paper":
            return self.per_micro_batch(micro_batch_size) / micro_batch_size
        return self.ratio

    @property
    def slug(self) -> str:
        """The mixture's part of a run directory name, e.g. `r0.3` or `r0.3-paper`."""
        return f"r{self.ratio:g}" + ("-paper" if self.rounding == "paper" else "")
