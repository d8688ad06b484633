"""A run's BabyLM word budget, counted exactly before it trains (`budget.json`); a run over its track's
limits is refused here, so its training never starts.

The words it will see are those of the very batches it will train on (`MixedBatches.words_seen`). Its data
are the real train split and, for a mixture, the seed split its prompts came from; GOOD and the amateur
trained on that same real split, so their data add no new words (`cdsynth.spec.budget`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cdsynth.checkpoints import best_checkpoint
from cdsynth.errors import ConfigError
from cdsynth.io import read_json, write_json
from cdsynth.spec.budget import limits_of, over_limits
from cdsynth.spec.paths import checkpoint_dir
from cdsynth.spec.training import TrainSettings
from cdsynth.train.packing import batch_source


def count_budget(
    run: str,
    cfg: TrainSettings,
    track: str,
    train_shards: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    corpus_stats: str | os.PathLike,
    synthetic_shards: str | os.PathLike | None = None,
    ancillary: list[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The budget of one run (`run` names it) as `budget.json` holds it."""
    batches = batch_source(cfg, train_shards, tokenizer_dir, synthetic_shards)
    real_train_words = int(batches.real.words.sum())
    prompt_words = read_json(corpus_stats)["totals"]["seed"]["words"] if cfg.mixture else 0
    real, synthetic = (round(words) for words in batches.words_seen(cfg.steps))
    limits = limits_of(track)
    data_words = real_train_words + prompt_words
    return {
        "run": run,
        "track": track,
        "limits": limits and {"data_words": limits.data_words, "words_seen": limits.words_seen},
        "data": {
            "real_train_words": real_train_words,
            "prompt_words": prompt_words,
            "total_words": data_words,
        },
        "seen": {
            "real": real,
            "synthetic": synthetic,
            "total": real + synthetic,
            "passes_over_real": round(real / real_train_words, 3),
            "tokens": cfg.steps * cfg.batch_size * cfg.block_size,
        },
        "ancillary": [model | ancillary_seen(model, real_train_words) for model in ancillary],
        "within_limits": limits and not over_limits(limits, data_words, real + synthetic),
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


def write_budget(out: str | os.PathLike, **counted: Any) -> dict[str, Any]:
    """Count a run's budget and write it to `out`, or refuse the run when it breaks its track's limits."""
    budget = count_budget(**counted)
    if budget["within_limits"] is False:
        limits = limits_of(budget["track"])
        problems = over_limits(limits, budget["data"]["total_words"], budget["seen"]["total"])
        raise ConfigError(
            f"{budget['run']}: over the {budget['track']} track's budget: {'; '.join(problems)} "
            f"({budget['seen']['passes_over_real']} passes over {budget['data']['real_train_words']:,} "
            "real words). Lower train.steps or the corpus's max_words, or choose babylm.track: none."
        )
    write_json(budget, out)
    return budget
