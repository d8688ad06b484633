"""A config's runs against its BabyLM track (`cdsynth.spec.tracks`), checked when the Snakefile loads.

The data of every model whose output a run trains on (GOOD, the amateur) counts toward the budget too;
here they all train on the same real train split, so the data is that split plus the seed split the
prompts come from (counted once).

Before any job, a run whose budget was counted (`budget.json`) is checked exactly; one not yet counted is
checked by its tokens seen (`planned_problems`). Before each training, the `budget` job counts the run's
words exactly (`cdsynth.train.budget`) and refuses there. The track is a check, never a definition of a
run: changing it reruns no job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cdsynth.errors import ConfigError
from cdsynth.spec.tracks import budget_problem, limits_of, over_limits


def tokens_seen(train: dict[str, Any]) -> int:
    """The tokens a run trains on: steps x batch x block, real and synthetic together."""
    return train["steps"] * train["batch_size"] * train["block_size"]


def planned_problems(
    track: str, runs: dict[str, dict[str, Any]], words_per_token: float | None, data_words: int | None
) -> list[str]:
    """What breaks the track before any job: the data, and every run (directory -> its training params)
    that would see too many words.

    A run's words seen are its tokens seen times `words_per_token` measured on the real token shards when
    they exist. Before they do, its tokens seen bound them: a whitespace word is at least one token of the
    tokenizers here (line breaks are tokens of their own; the demo corpus has 1.47 tokens per word and no
    document with more words than tokens), so this refuses only what could exceed. `data_words` is known
    once the corpus is built, or bounded by the sources' `max_words` when every source has one.
    """
    limits = limits_of(track)
    if limits is None:
        return []
    problems = [
        f"corpus: {problem} by the {track} track; lower the sources' max_words, or choose babylm.track: none"
        for problem in over_limits(limits, data_words, 0)
    ]
    basis = (
        f"x {words_per_token:.3f} words per token, measured on the real token shards"
        if words_per_token is not None
        else "(at most one word per token; build the token shards first, snakemake results/tokens/train, "
        "to check with their measured words per token)"
    )
    for run, train in runs.items():
        tokens = tokens_seen(train)
        words = tokens * (words_per_token if words_per_token is not None else 1.0)
        problems += [
            f"{run}: {problem} by the {track} track: {train['steps']} steps x {train['batch_size']} x "
            f"{train['block_size']} = {tokens:,} tokens {basis}; lower train.steps, or choose "
            "babylm.track: none"
            for problem in over_limits(limits, None, words)
        ]
    return problems


def measured_words_per_token(shards_meta: str | os.PathLike) -> float | None:
    """Words per token of built token shards (their `meta.json`), or None before they exist."""
    path = Path(shards_meta)
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    return meta["num_words"] / meta["num_tokens"] if meta.get("num_words") is not None else None


def known_data_words(corpus_stats: str | os.PathLike, sources: dict[str, dict[str, Any]]) -> int | None:
    """The words of the train and seed splits of a built corpus; before it is built, the sum of the
    sources' `max_words` when every source has one; otherwise None (the budget job counts them)."""
    path = Path(corpus_stats)
    if path.is_file():
        totals = json.loads(path.read_text())["totals"]
        return totals["train"]["words"] + totals["seed"]["words"]
    caps = [source.get("max_words") for source in sources.values()]
    return sum(caps) if all(cap is not None for cap in caps) else None


def check_planned_budget(
    track: str,
    runs: dict[str, dict[str, Any]],
    budget_files: dict[str, str],
    sources: dict[str, dict[str, Any]],
    shards_meta: str | os.PathLike,
    corpus_stats: str | os.PathLike,
) -> None:
    """Refuse a config whose runs would break its track, before any job: a run with a counted budget by
    its `budget.json`, the others by `planned_problems`."""
    if limits_of(track) is None:
        return
    counted = {run: Path(budget_files[run]) for run in runs if Path(budget_files[run]).is_file()}
    problems = [budget_problem(track, json.loads(path.read_text())) for path in counted.values()]
    problems = [line for line in problems if line is not None]
    problems += planned_problems(
        track,
        {run: train for run, train in runs.items() if run not in counted},
        measured_words_per_token(shards_meta),
        known_data_words(corpus_stats, sources),
    )
    if problems:
        raise ConfigError(f"over the BabyLM {track} track's word budget:\n  " + "\n  ".join(problems))
