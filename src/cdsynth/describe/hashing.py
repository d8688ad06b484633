"""Deterministic hashing of words, n-grams and token windows, for the corpus statistics.

A word's identity is the first 8 bytes of its blake2b digest (not Python's salted `hash()`), n-grams are
hashed with fixed 64-bit mixing (splitmix64) and windows with two fixed polynomial hashes, so every key is
the same in every run and on every machine. Sets of keys are sorted uint64 arrays.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
_MIX1, _MIX2 = U64(0xBF58476D1CE4E5B9), U64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15
# Two polynomial hashes, mod a 31-bit and a 23-bit prime: a window's key (h1 * P2 + h2) fits 54 bits,
# leaving 10 for the row in the batch; two different windows share a key with probability ~2**-54.
_P1, _B1 = 2_147_483_647, 911_382_323
_P2, _B2 = 8_388_593, 5_237_777
ROW_SHIFT = U64(54)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fixed bijection of uint64 that spreads every input bit over the output."""
    x = x ^ (x >> U64(30))
    x *= _MIX1
    x ^= x >> U64(27)
    x *= _MIX2
    x ^= x >> U64(31)
    return x


def positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, position within its row) of every element of rows of `lengths` laid end to end."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    return rows, np.arange(len(rows)) - starts[rows]


def ngram_keys(values: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit key, row) of every n-gram lying wholly inside one row, in order.

    `values` are the uint64 items of rows of `lengths` laid end to end; an n-gram never spans two rows.
    For n = 1 the key is the item itself, so distinct keys are exactly distinct items.
    """
    count = len(values) - n + 1
    if count <= 0:
        return np.empty(0, U64), np.empty(0, np.int64)
    rows, local = positions(lengths)
    valid = local[:count] + n <= lengths[rows[:count]]
    if n == 1:
        keys = values.copy()
    else:
        keys = mix(values[:count] ^ U64((_GOLDEN * n) & 0xFFFFFFFFFFFFFFFF))
        for k in range(1, n):
            keys = mix(keys ^ values[k : k + count])
    return keys[valid], rows[:count][valid]


def blake_words(words: list[str]) -> np.ndarray:
    """The uint64 identity of each word: the first 8 bytes of its blake2b digest (the same in any process)."""
    digests = b"".join(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest() for w in words)
    return np.frombuffer(digests, dtype="<u8").astype(U64)


def word_ids(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 word ids laid end to end, words per text) of the whitespace words of `texts`.

    Words are what `str.split()` gives (runs of Unicode whitespace separate them; pyarrow's splitter, which
    leaves empty words at the ends, is filtered to the same); a null text has none. Each batch hashes only
    its distinct words, so no dictionary grows with the corpus.
    """
    split = pc.utf8_split_whitespace(pc.fill_null(texts, ""))
    per_text = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(split)
    if len(flat) == 0:
        return np.empty(0, U64), np.zeros(len(texts), np.int64)
    encoded = pc.dictionary_encode(flat)
    ids = blake_words(encoded.dictionary.to_pylist())[encoded.indices.to_numpy(zero_copy_only=False)]
    keep = pc.greater(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)
    rows, _ = positions(per_text)
    return ids[keep], np.bincount(rows[keep], minlength=len(texts)).astype(np.int64)


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique by sorting: numpy 2's hash-table unique is many times slower on random uint64 keys."""
    ordered = np.sort(keys)
    keep = np.ones(len(ordered), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


class DistinctSet:
    """A growing set of uint64 keys, merged lazily (sorting once per doubling keeps the cost n log n)."""

    def __init__(self) -> None:
        self._merged = np.empty(0, U64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, keys: np.ndarray) -> None:
        unique = sorted_unique(keys)
        self._pending.append(unique)
        self._pending_size += len(unique)
        if self._pending_size > max(len(self._merged), 1 << 20):
            self._merge()

    def _merge(self) -> None:
        if self._pending:
            self._merged = sorted_unique(np.concatenate([self._merged, *self._pending]))
            self._pending, self._pending_size = [], 0

    def values(self) -> np.ndarray:
        self._merge()
        return self._merged

    def __len__(self) -> int:
        return len(self.values())


# ---------------------------------------------------------------------------------- per-sample repeats


def _powers(base: int, modulus: int, count: int) -> np.ndarray:
    """base**k % modulus for k < count, built from two short Python loops and one outer product."""
    block = 1024
    small = np.array([pow(base, k, modulus) for k in range(block)], U64)
    step = pow(base, block, modulus)
    large = np.array([pow(step, k, modulus) for k in range(-(-count // block))], U64)
    return ((large[:, None] * small[None, :]) % U64(modulus)).ravel()[:count]


class WindowHashes:
    """Keys of arbitrary windows of a batch's ids: two polynomial hashes from prefix sums.

    A window [i, i + L) hashes to sum_j v[j] B**j over it, shifted by B**(T - i) so that equal contents give
    equal keys wherever they start; any window's key then costs a few vector operations.
    """

    def __init__(self, values: np.ndarray) -> None:
        self._total = len(values)
        self._tables = []
        for modulus, base in ((_P1, _B1), (_P2, _B2)):
            p = U64(modulus)
            powers = _powers(base, modulus, self._total + 1)
            prefix = np.zeros(self._total + 1, U64)
            np.cumsum((values % p) * powers[:-1] % p, out=prefix[1:])
            self._tables.append((p, powers, prefix % p))

    def keys(self, starts: np.ndarray, length: np.ndarray | int) -> np.ndarray:
        """54-bit keys of the windows [starts, starts + length)."""
        parts = []
        for p, powers, prefix in self._tables:
            window = (prefix[starts + length] + p - prefix[starts]) % p
            parts.append(window * powers[self._total - starts] % p)
        return parts[0] * U64(_P2) + parts[1]


def repeats_per_row(keys: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, how many of its keys repeat an earlier key of the same row (count minus distinct)."""
    tagged = np.sort(keys | (rows.astype(U64) << ROW_SHIFT))
    dup = tagged[1:] == tagged[:-1]
    return np.bincount((tagged[1:][dup] >> ROW_SHIFT).astype(np.int64), minlength=n_rows)


def ranges(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for each c in `counts`, laid end to end."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def longest_repeats(hashes: WindowHashes, lengths: np.ndarray) -> np.ndarray:
    """Per row, the longest span of ids that occurs at least twice in the row (overlapping allowed).

    A repeat of length L contains one of every shorter length, so each row's answer is searched by
    galloping then bisection, all rows at once: one sort of the windows of every still-open row per step.
    """
    offsets = np.cumsum(lengths) - lengths
    low = np.zeros(len(lengths), np.int64)
    high = np.maximum(lengths - 1, 0)
    while (active := np.flatnonzero(low < high)).size:
        # Gallop (1, 2, 4, ...) before bisecting: most rows' longest repeat is short.
        mid = np.minimum((low[active] + high[active] + 1) // 2, np.maximum(2 * low[active], 1))
        counts = lengths[active] - mid + 1
        starts = np.repeat(offsets[active], counts) + ranges(counts)
        keys = hashes.keys(starts, np.repeat(mid, counts))
        found = repeats_per_row(keys, np.repeat(np.arange(len(active)), counts), len(active)) > 0
        low[active] = np.where(found, mid, low[active])
        high[active] = np.where(found, high[active], mid - 1)
    return low
