"""What defines a mixture run's synthetic data: the ratio of synthetic sequences and how it is rounded."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from cdsynth.errors import ConfigError
from cdsynth.spec.settings import bound_problems, setting

ROUNDINGS = ("exact", "paper")


@dataclass(frozen=True)
class Mixture:
    """The share `ratio` of a run's training sequences that come from the synthetic corpus.

    `exact` meets the ratio over the run; `paper` floors it per device micro batch, as the authors' code
    did (16 x 0.3 -> 4 of 16, so their "30%" was 25%).
    """

    ratio: float = setting(exclusive_minimum=0, exclusive_maximum=1, help="share of synthetic sequences")
    rounding: str = setting(
        "exact", choices=ROUNDINGS, help="exact: over the run; paper: floored per micro batch"
    )

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if problems:
            raise ConfigError("invalid mixture:\n  " + "\n  ".join(problems))

    @property
    def per_device(self) -> bool:
        """`paper` rounding: the ratio is floored in every micro batch, as the authors' code did."""
        return self.rounding == "paper"

    def per_micro_batch(self, micro_batch_size: int) -> int:
        """`paper` rounding's synthetic sequences in each micro batch: floor(micro x ratio)."""
        return int(micro_batch_size * Fraction(str(self.ratio)))

    def synthetic_before(self, step: int, batch_size: int, micro_batch_size: int) -> int:
        """Synthetic sequences in the batches of optimizer steps 0 .. step - 1."""
        if self.per_device:
            return step * self.per_micro_batch(micro_batch_size) * (batch_size // micro_batch_size)
        return int(step * batch_size * Fraction(str(self.ratio)))

    def share(self, micro_batch_size: int) -> float:
        """The share of training sequences that are synthetic: `ratio` (exact), or the floored count of a
        micro batch over its size (paper: 16 x 0.3 -> 4 of 16 = 0.25)."""
        if self.per_device:
            return self.per_micro_batch(micro_batch_size) / micro_batch_size
        return self.ratio

    def floor_problem(self, micro_batch_size: int) -> str | None:
        """Why `paper` rounding would leave a micro batch with no synthetic sequence, or None."""
        if self.per_device and self.per_micro_batch(micro_batch_size) < 1:
            return (
                f"{self.ratio} of a micro batch of {micro_batch_size} floors to no synthetic sequence with "
                "mix.rounding: paper; raise it or use rounding: exact"
            )
        return None

    @property
    def slug(self) -> str:
        """The mixture's part of a run directory name, e.g. `r0.3` or `r0.3-paper`."""
        return f"r{self.ratio:g}" + ("-paper" if self.per_device else "")
