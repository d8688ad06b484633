"""Which blocks form each global batch: real data only, or real data mixed with a synthetic stream.

Every choice is a pure function of (seed, step), so a resumed run sees exactly the batches it would have
seen, and the position in each stream is known from the step alone. A stream that runs out is reshuffled.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

ROUNDINGS = ("exact", "paper")


class BlockSampler:
    """Positions 0, 1, 2, ... of an endless stream of blocks: a fresh permutation per pass over the data."""

    def __init__(self, num_blocks: int, key: tuple[int, ...]):
        self.num_blocks, self.key = num_blocks, key
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {k: v for k, v in self._perms.items() if k >= epoch - 1}
            self._perms[epoch] = np.random.default_rng([*self.key, epoch]).permutation(self.num_blocks)
        return self._perms[epoch]

    def take(self, start: int, count: int) -> np.ndarray:
        """Block indices at stream positions start .. start + count - 1."""
        epochs, offsets = np.divmod(start + np.arange(count), self.num_blocks)
        return np.array([self._perm(int(e))[o] for e, o in zip(epochs, offsets)], dtype=np.int64)


class MixedBatches:
    """Global batches of `batch_size` sequences, a `fraction` of them from the synthetic stream.

    `exact` meets the fraction over the run: after step s, floor(s x batch_size x fraction) synthetic
    sequences have been seen, spread evenly over each batch. `paper` floors per device micro batch, as the
    authors' code did (16 x 0.3 -> 4 of 16, i.e. 25%): the first floor(micro x fraction) of every micro
    batch are synthetic.
    """

    def __init__(
        self,
        real: np.ndarray,
        synthetic: np.ndarray | None,
        batch_size: int,
        micro_batch_size: int,
        seed: int,
        fraction: float = 0.0,
        rounding: str = "exact",
    ):
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
        self.real, self.synthetic = real, synthetic
        self.batch_size, self.micro = batch_size, micro_batch_size
        self.fraction, self.rounding = Fraction(str(fraction)), rounding
        self.real_stream = BlockSampler(len(real), (seed,))
        self.synthetic_stream = BlockSampler(len(synthetic), (seed, 1)) if synthetic is not None else None

    def synthetic_before(self, step: int) -> int:
        """Synthetic sequences in the batches of steps 0 .. step - 1."""
        if self.rounding == "paper":
            per_micro = int(self.micro * self.fraction)
            return step * per_micro * (self.batch_size // self.micro)
        return int(step * self.batch_size * self.fraction)

    def synthetic_slots(self, step: int) -> np.ndarray:
        """Positions in the global batch of `step` that take a synthetic sequence."""
        count = self.synthetic_before(step + 1) - self.synthetic_before(step)
        if self.rounding == "paper":
            micro_starts = np.arange(0, self.batch_size, self.micro)
            per_micro = count // len(micro_starts)
            return (micro_starts[:, None] + np.arange(per_micro)[None, :]).ravel()
        return np.arange(count) * self.batch_size // max(count, 1)

    def batch(self, step: int) -> np.ndarray:
        """The (batch_size, block_size) token blocks of optimizer step `step` (0-based)."""
        slots = self.synthetic_slots(step)
        is_synthetic = np.zeros(self.batch_size, dtype=bool)
        is_synthetic[slots] = True
        real_start = step * self.batch_size - self.synthetic_before(step)
        rows = self.real[self.real_stream.take(real_start, self.batch_size - len(slots))]
        out = np.empty((self.batch_size, self.real.shape[1]), dtype=self.real.dtype)
        out[~is_synthetic] = rows
        if len(slots):
            out[is_synthetic] = self.synthetic[
                self.synthetic_stream.take(self.synthetic_before(step), len(slots))
            ]
        return out

    def synthetic_share(self, steps: int) -> float:
        """The share of synthetic sequences among all seen in the first `steps` steps."""
        return self.synthetic_before(steps) / (steps * self.batch_size) if steps else 0.0
