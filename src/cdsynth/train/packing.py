"""Which blocks form each global batch: real data only, or real data mixed with a synthetic stream.

Every choice is a pure function of (seed, step), so a resumed run sees exactly the batches it would have
seen, and the position in each stream is known from the step alone. A stream that runs out starts a new
pass over its documents.

Words seen are counted as the BabyLM rules count them, whitespace-separated words of the text
(`cdsynth.data.shards.count_words`): a block carries the words of the documents it holds, and a document
cut across blocks counts in each in proportion to its tokens there (BOS and EOS included), so the blocks
of a pass carry exactly the words of the documents they cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdsynth.data.shards import Documents, load_documents
from cdsynth.errors import ConfigError, DataError
from cdsynth.spec.mixture import Mixture
from cdsynth.spec.training import PACKINGS, DataOrder


@dataclass(frozen=True)
class _Pass:
    """One pass's layout: the documents in packing order, where each one ends, and the block order."""

    order: np.ndarray
    ends: np.ndarray
    blocks: np.ndarray


class PackedStream:
    """An endless stream of `block_size`-token blocks packed from documents, one pass after another.

    `shuffled` (the authors' packing): every pass shuffles the documents with its own seed, concatenates
    them and cuts the result into blocks, so a document's neighbours and cut points change from pass to
    pass and the continuations of one prompt do not sit side by side. `fixed`: the documents are packed
    once, in corpus order. Either way a pass visits its blocks in a shuffled order, and the tokens after
    the last whole block are left out of that pass. Pass p depends only on (key, p).
    """

    def __init__(self, documents: Documents, block_size: int, key: tuple[int, ...], packing: str):
        if packing not in PACKINGS:
            raise ValueError(f"packing must be one of {PACKINGS}, not {packing!r}")
        self.tokens, self.starts, self.words = documents
        self.block_size, self.key, self.packing = block_size, key, packing
        self.lengths = np.diff(self.starts)
        self.blocks_per_pass = len(self.tokens) // block_size
        self._passes: dict[int, _Pass] = {}
        self._pass_words: dict[int, np.ndarray] = {}

    def _pass(self, number: int) -> _Pass:
        if number not in self._passes:
            self._passes = {k: v for k, v in self._passes.items() if k >= number - 1}
            rng = np.random.default_rng([*self.key, number])
            order = np.arange(len(self.lengths))
            if self.packing == "shuffled":
                order = rng.permutation(order)
            blocks = rng.permutation(self.blocks_per_pass)
            self._passes[number] = _Pass(order, np.cumsum(self.lengths[order]), blocks)
        return self._passes[number]

    def take(self, start: int, count: int) -> np.ndarray:
        """The (count, block_size) blocks at stream positions start .. start + count - 1."""
        return self.tokens[self.token_indices(start, count)]

    def token_indices(self, start: int, count: int) -> np.ndarray:
        """Where in `tokens` the blocks at stream positions start .. start + count - 1 come from."""
        passes, index = np.divmod(start + np.arange(count), self.blocks_per_pass)
        out = np.empty((count, self.block_size), dtype=np.int64)
        for number in np.unique(passes):
            rows = passes == number
            out[rows] = self._block_indices(self._pass(int(number)), index[rows])
        return out

    def words_before(self, position: int) -> float:
        """The words carried by the blocks at stream positions 0 .. position - 1."""
        passes, index = divmod(position, self.blocks_per_pass)
        return (
            sum(self._words_of_pass(number)[-1] for number in range(passes))
            + self._words_of_pass(passes)[index]
        )

    def _words_of_pass(self, number: int) -> np.ndarray:
        """Cumulative words of the pass's blocks in visiting order: [0, first block's, first two's, ...]."""
        if number not in self._pass_words:
            layout = self._pass(number)
            # Words before position p of the packed pass: whole documents before it, and the share of the
            # document it falls in that lies before it.
            edges = np.arange(self.blocks_per_pass + 1) * self.block_size
            rank = np.minimum(np.searchsorted(layout.ends, edges, side="right"), len(layout.order) - 1)
            lengths, words = self.lengths[layout.order], self.words[layout.order]
            before = np.concatenate([[0], np.cumsum(words)])[rank]
            start = layout.ends[rank] - lengths[rank]
            cumulative = before + words[rank] * (edges - start) / lengths[rank]
            self._pass_words[number] = np.concatenate([[0.0], np.cumsum(np.diff(cumulative)[layout.blocks])])
        return self._pass_words[number]

    def _block_indices(self, layout: _Pass, index: np.ndarray) -> np.ndarray:
        # Position p of the pass's packed stream lies in its r-th document, at p - (that document's start).
        positions = layout.blocks[index, None] * self.block_size + np.arange(self.block_size)
        rank = np.searchsorted(layout.ends, positions, side="right")
        document = layout.order[rank]
        offset = positions - (layout.ends[rank] - self.lengths[document])
        return self.starts[document] + offset


def packed_in_order(tokens: np.ndarray, block_size: int) -> np.ndarray:
    """Documents concatenated in order and cut into (blocks, block_size); the partial last block dropped."""
    count = len(tokens) // block_size
    return tokens[: count * block_size].reshape(count, block_size)


class MixedBatches:
    """Global batches of `batch_size` sequences, a `mixture.ratio` of them from the synthetic stream.

    `exact` rounding meets the ratio over the run: after step s, floor(s x batch_size x ratio) synthetic
    sequences have been seen, spread evenly over each batch. `paper` floors per device micro batch, as the
    authors' code did (16 x 0.3 -> 4 of 16, i.e. 25%): the first floor(micro x ratio) of every micro batch
    are synthetic. Without a mixture every sequence is real.
    """

    def __init__(
        self,
        real: PackedStream,
        synthetic: PackedStream | None,
        batch_size: int,
        micro_batch_size: int,
        mixture: Mixture | None = None,
    ):
        if (synthetic is None) != (mixture is None):
            raise ValueError("a synthetic stream and a mixture go together")
        self.real, self.synthetic, self.mixture = real, synthetic, mixture
        self.batch_size, self.micro = batch_size, micro_batch_size

    @property
    def block_size(self) -> int:
        return self.real.block_size

    def synthetic_before(self, step: int) -> int:
        """Synthetic sequences in the batches of steps 0 .. step - 1."""
        return self.mixture.synthetic_before(step, self.batch_size, self.micro) if self.mixture else 0

    def synthetic_slots(self, step: int) -> np.ndarray:
        """Positions in the global batch of `step` that take a synthetic sequence."""
        count = self.synthetic_before(step + 1) - self.synthetic_before(step)
        if self.mixture and self.mixture.per_device:
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
        out = np.empty((self.batch_size, self.block_size), dtype=self.real.tokens.dtype)
        out[~is_synthetic] = self.real.take(real_start, self.batch_size - len(slots))
        if len(slots):
            out[is_synthetic] = self.synthetic.take(self.synthetic_before(step), len(slots))
        return out

    def words_seen(self, steps: int) -> tuple[float, float]:
        """(real, synthetic) words carried by the batches of the first `steps` steps."""
        synthetic = self.synthetic_before(steps)
        real = self.real.words_before(steps * self.batch_size - synthetic)
        return real, self.synthetic.words_before(synthetic) if self.synthetic else 0.0

    def ratio_seen(self, steps: int) -> float:
        """The ratio of synthetic sequences among all seen in the first `steps` steps."""
        return self.synthetic_before(steps) / (steps * self.batch_size) if steps else 0.0


def batch_source(order: DataOrder, train_shards, tokenizer_dir, synthetic_shards=None) -> MixedBatches:
    """A run's batches, step by step, from its token shards: its real stream, and its synthetic one for a
    mixture (each stream keyed by the seed, so the trainer and the budget count see the same batches)."""
    if order.mixture and synthetic_shards is None:
        raise ConfigError(f"a mixture ({order.mixture.slug}) needs synthetic token shards")
    real = packed_stream(order, train_shards, tokenizer_dir, key=(order.seed,))
    synthetic = None
    if order.mixture:
        synthetic = packed_stream(order, synthetic_shards, tokenizer_dir, key=(order.seed, 1))
    return MixedBatches(real, synthetic, order.batch_size, order.micro_batch_size, order.mixture)


def packed_stream(order: DataOrder, shards_dir, tokenizer_dir, key: tuple[int, ...]) -> PackedStream:
    stream = PackedStream(load_documents(shards_dir, tokenizer_dir), order.block_size, key, order.packing)
    if stream.blocks_per_pass == 0:
        raise DataError(
            f"{shards_dir}: {len(stream.tokens)} tokens, fewer than one block of {order.block_size}; lower "
            "shards.block_size or add text to the corpus."
        )
    return stream
