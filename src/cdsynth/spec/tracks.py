"""The BabyLM 2025 tracks' word limits (the challenge's rules). Torch-free.

A track limits the words of training data (strict: 100M, strict-small: 10M) and the words a model sees
while it trains (10 epochs: 1B, 100M). Words are whitespace-separated words of the text, real and
synthetic alike (`cdsynth.data.shards.count_words`).
"""

from __future__ import annotations

from dataclasses import dataclass

TRACK_NAMES = ("none", "strict", "strict-small")


@dataclass(frozen=True)
class Limits:
    data_words: int  # words of training data, ancillary models' included
    words_seen: int  # words a model may see while it trains (10 epochs)


TRACKS = {
    "strict": Limits(data_words=100_000_000, words_seen=1_000_000_000),
    "strict-small": Limits(data_words=10_000_000, words_seen=100_000_000),
}


def limits_of(track: str) -> Limits | None:
    """A track's limits; None for `none`."""
    return TRACKS.get(track)


def over_limits(limits: Limits, data_words: float | None, words_seen: float) -> list[str]:
    """What breaks the limits, in words (an unknown `data_words` is not checked)."""
    problems = []
    if data_words is not None and data_words > limits.data_words:
        problems.append(f"{data_words:,.0f} words of training data, above the {limits.data_words:,} allowed")
    if words_seen > limits.words_seen:
        problems.append(f"sees {words_seen:,.0f} words, above the {limits.words_seen:,} allowed")
    return problems


def budget_problem(track: str, budget: dict) -> str | None:
    """Why a counted budget (`budget.json`) breaks its track, naming the run and its numbers; or None."""
    limits = limits_of(track)
    problems = limits and over_limits(limits, budget["data"]["total_words"], budget["seen"]["total"])
    if not problems:
        return None
    return (
        f"{budget['run']}: over the {track} track's budget: {'; '.join(problems)} "
        f"({budget['seen']['passes_over_real']} passes over {budget['data']['real_train_words']:,} real "
        "words). Lower train.steps or the corpus's max_words, or choose babylm.track: none."
    )
