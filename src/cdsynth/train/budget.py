"""A run's BabyLM word budget, counted exactly before it trains (`budget.json`); a run over its track's
limits is refused here, so its training never starts.

The words it will see are those of the very batches it will train on (`MixedBatches.words_seen`). Its data
are the real train split and, for a mixture, the seed split its prompts came from; GOOD and the amateur
trained on that same real split, so their data add no new words (`cdsynth.spec.budget`). The file holds
counts only: the track they are held against is the config's, checked here and whenever the workflow loads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cdsynth.checkpoints import best_checkpoint
from cdsynth.errors import ConfigError
from cdsynth.io import read_json, write_json
from cdsynth.spec.paths import checkpoint_dir
from cdsynth.spec.tracks import budget_problem
from cdsynth.spec.training import DataOrder
from cdsynth.train.packing import batch_source


def count_budget(
    run: str,
    order: DataOrder,
    train_shards: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    corpus_stats: str | os.PathLike,
    synthetic_shards: str | os.PathLike | None = None,
    ancillary: list[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The budget of one run (`run` names it) as `budget.json` holds it."""
    batches = batch_source(order, train_shards, tokenizer_dir, synthetic_shards)
    real_train_words = int(batches.real.words.sum())
    prompt_words = read_json(corpus_stats)["totals"]["seed"]["words"] if order.mixture else 0
    real, synthetic = (round(words) for words in batches.words_seen(order.steps))
    return {
        "run": run,
        "data": {
            "real_train_words": real_train_words,
            "prompt_words": prompt_words,
            "total_words": real_train_words + prompt_words,
        },
        "seen": {
            "real": real,
            "synthetic": synthetic,
            "total": real + synthetic,
            "passes_over_real": round(real / real_train_words, 3),
            "tokens": order.steps * order.batch_size * order.block_size,
        },
        "ancillary": [model | ancillary_seen(model, real_train_words) for model in ancillary],
    }


def ancillary_seen(model: dict[str, Any], real_train_words: int) -> dict[str, Any]:
    """What a model whose output the run trains on had seen, from its checkpoint; its data are the same
    real train split."""
    checkpoint = (
        best_checkpoint(model["run"])
        if model["step"] == "best"
        else Path(checkpoint_dir(model["run"], model["step"]))
    )
    info = read_json(checkpoint / "checkpoint.json")
    return {"checkpoint": str(checkpoint), "words_seen": info.get("words"), "data_words": real_train_words}


def write_budget(out: str | os.PathLike, track: str, **counted: Any) -> dict[str, Any]:
    """Count a run's budget and write it to `out`, or refuse the run when it breaks `track`'s limits."""
    budget = count_budget(**counted)
    problem = budget_problem(track, budget)
    if problem:
        raise ConfigError(problem)
    write_json(budget, out)
    return budget
