"""Evaluate checkpoints: perplexity on the corpus test split and the BabyLM 2025 zero-shot suite.

Scores follow the official pipeline (`../shared/REFERENCE.md` §2): accuracy per subtask then
macro-averaged (Entity Tracking: per file x numops, then per file group, then over the groups); WUG is the
Spearman correlation (x100) of P(first variant) with the human ratio; Reading and Eye Tracking are the R2
gain of adding the word's surprisal to a baseline OLS regression, x100. Every item's numbers go into a
predictions table so that the paired bootstrap can resample them later.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from scipy.stats import rankdata
from transformers import AutoTokenizer

from cdsynth.babylm import TASK_DIRS, load_items, load_reading, subsample, task_dir
from cdsynth.errors import DataError
from cdsynth.io import atomic_path, move_into_place, read_arrow, read_json, sha256_file, work_dir, write_json
from cdsynth.lm_scoring import completion_logprobs, document_nlls
from cdsynth.pair import load_causal_lm

CHOICE_TASKS = ("blimp", "blimp_supplement", "ewok", "entity_tracking")
TASKS = ("perplexity", *CHOICE_TASKS, "wug", "reading")
EYE_MEASURES = ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")
BASE_TERMS = ["Subtlex_log10", "length", "context_length"]
PREDICTIONS = pa.schema(
    [
        ("task", pa.string()),
        ("subtask", pa.string()),
        ("item", pa.int64()),
        ("logprobs", pa.list_(pa.float64())),
        ("correct", pa.bool_()),
        ("value", pa.float64()),
        ("reference", pa.float64()),
        ("tokens", pa.int64()),
    ]
)
VALUE_MEANING = {
    "wug": "value = P(first variant), reference = human ratio",
    "reading": "value = surprisal of the word, reference = surprisal of the previous word",
    "perplexity": "value = summed NLL of the document, tokens = predicted tokens",
}


def score_candidates(model, tokenizer, items, batch_size: int, task: str) -> list[np.ndarray]:
    """Summed completion log-probabilities of every candidate, grouped back per item."""
    pairs = [pair for item in items for pair in item.candidates]
    flat = completion_logprobs(model, tokenizer, pairs, batch_size, desc=task)
    bounds = np.cumsum([0] + [len(item.candidates) for item in items])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def choice_task(model, tokenizer, data_dir, task, max_items, batch_size) -> tuple[dict, list[dict]]:
    """Accuracy (%) per subtask and its aggregate; the correct candidate is the first."""
    items = load_items(data_dir, task, max_items)
    scores = score_candidates(model, tokenizer, items, batch_size, task)
    correct: dict[str, list[bool]] = defaultdict(list)
    rows = []
    for item, logprobs in zip(items, scores):
        hit = bool(np.argmax(logprobs) == 0)
        correct[item.subtask].append(hit)
        rows.append(
            {
                "task": task,
                "subtask": item.subtask,
                "item": item.index,
                "logprobs": logprobs.tolist(),
                "correct": hit,
            }
        )
    per_subtask = {name: 100 * float(np.mean(hits)) for name, hits in correct.items()}
    return {"score": float(aggregate(task, per_subtask)), "subtasks": per_subtask}, rows


def aggregate(task: str, per_subtask: dict[str, Any]) -> Any:
    """A task's score from its subtask accuracies (floats, or equal-length arrays of bootstrap replicates)."""
    if task != "entity_tracking":
        return np.mean(np.stack(list(per_subtask.values())), axis=0)
    groups: dict[str, list] = defaultdict(list)
    for name, accuracy in per_subtask.items():
        groups[name.rsplit("_", 2)[0]].append(accuracy)  # "<file>_<numops>_ops"
    return np.mean(np.stack([np.mean(np.stack(values), axis=0) for values in groups.values()]), axis=0)


def wug_task(model, tokenizer, data_dir, max_items, batch_size) -> tuple[dict, list[dict]]:
    items = load_items(data_dir, "wug", max_items)
    scores = score_candidates(model, tokenizer, items, batch_size, "wug")
    first = [float(np.exp(lp[0] - np.logaddexp(lp[0], lp[1]))) for lp in scores]
    ratios = [item.extra["ratio"] for item in items]
    rows = [
        {
            "task": "wug",
            "subtask": item.subtask,
            "item": item.index,
            "logprobs": lp.tolist(),
            "value": p,
            "reference": r,
        }
        for item, lp, p, r in zip(items, scores, first, ratios)
    ]
    return {"score": float(spearman(np.array(first), np.array(ratios)))}, rows


def spearman(x: np.ndarray, y: np.ndarray) -> Any:
    """Spearman correlation x 100 along the last axis (average ranks for ties).

    A constant side has no ranking to correlate: that counts as 0, not NaN, so that a bootstrap replicate
    drawing one item many times still has a value.
    """
    x, y = rankdata(x, axis=-1), rankdata(y, axis=-1)
    x -= x.mean(axis=-1, keepdims=True)
    y -= y.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    return 100 * np.divide((x * y).sum(-1), norm, out=np.zeros_like(norm), where=norm > 0)


def ols_r2(target: np.ndarray, columns: list[np.ndarray], weights: np.ndarray | None = None) -> Any:
    """R2 of an OLS fit with intercept; with (B, rows) `weights`, of B weighted fits at once.

    Integer weights are the bootstrap: a row drawn twice counts twice, exactly as if it were duplicated.
    Columns are standardized first, which keeps their span (with the intercept) and the normal equations
    well conditioned.
    """
    raw = np.column_stack(columns)
    design = np.column_stack([np.ones_like(target), (raw - raw.mean(0)) / raw.std(0)])
    w = np.ones((1, len(target))) if weights is None else np.asarray(weights, dtype=np.float64)
    k = design.shape[1]
    gram = (w @ (design[:, :, None] * design[:, None, :]).reshape(len(target), k * k)).reshape(-1, k, k)
    moments = w @ (design * target[:, None])
    coef = np.linalg.solve(gram, moments[:, :, None])[:, :, 0]
    residual = target[None, :] - coef @ design.T
    mean = (w @ target) / w.sum(1)
    r2 = 1 - (w * residual**2).sum(1) / (w * (target[None, :] - mean[:, None]) ** 2).sum(1)
    return float(r2[0]) if weights is None else r2


def with_interactions(names: list[str]) -> list[tuple[str, ...]]:
    return [(n,) for n in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


def r2_gain(
    table: dict[str, np.ndarray], target: str, base: list[str], weights: np.ndarray | None = None
) -> Any:
    """(R2 with surprisal - R2 without) / (1 - R2 without) x 100, on the rows where every value exists.

    With (B, rows) bootstrap `weights`, returns the B replicate gains.
    """
    used = [target, "pred", *base]
    keep = np.all([np.isfinite(table[name]) for name in used], axis=0)
    terms = [np.prod([table[n][keep] for n in term], axis=0) for term in with_interactions(base)]
    kept = None if weights is None else weights[:, keep]
    r2_base = ols_r2(table[target][keep], terms, kept)
    r2_model = ols_r2(table[target][keep], [*terms, table["pred"][keep]], kept)
    return 100 * (r2_model - r2_base) / (1 - r2_base)


def reading_table(
    rows: list[dict], surprisal: np.ndarray, prev_surprisal: np.ndarray
) -> dict[str, np.ndarray]:
    """The regression variables of every reading row; missing values are NaN."""
    table = {
        name: np.array([float(r[name]) if r[name] not in ("", "NA") else np.nan for r in rows])
        for name in [*EYE_MEASURES, "self_paced_reading_time", *BASE_TERMS, "prev_length"]
    }
    return table | {"pred": surprisal, "prev_pred": prev_surprisal}


def reading_scores(table: dict[str, np.ndarray], weights: np.ndarray | None = None) -> tuple[Any, dict, Any]:
    """(Eye Tracking, its four measures, Reading): R2 gains, or their bootstrap replicates with weights."""
    eye = {m: r2_gain(table, m, BASE_TERMS, weights) for m in EYE_MEASURES}
    spillover = [*BASE_TERMS, "prev_length", "prev_pred"]
    reading = r2_gain(table, "self_paced_reading_time", spillover, weights)
    return np.mean(np.stack(list(eye.values())), axis=0), eye, reading


def reading_task(model, tokenizer, data_dir, batch_size) -> tuple[dict, dict, list[dict]]:
    """Eye Tracking (mean over four first-pass measures) and self-paced Reading (with spillover).

    Always on all 1,726 words: the regressions need them, and scoring them is cheap.
    """
    rows = load_reading(data_dir)
    words = completion_logprobs(
        model, tokenizer, [(r["item"], " " + r["word"]) for r in rows], batch_size, "reading"
    )
    has_prev = [bool(r["prev_item"]) for r in rows]
    prev_pairs = [(r["prev_item"], " " + r["prev_word"]) for r, ok in zip(rows, has_prev) if ok]
    prev_scores = iter(completion_logprobs(model, tokenizer, prev_pairs, batch_size))
    prev = np.array([-next(prev_scores) if ok else np.nan for ok in has_prev])
    table = reading_table(rows, -words, prev)
    eye_tracking, eye, reading = reading_scores(table)
    predictions = [
        {
            "task": "reading",
            "subtask": "reading",
            "item": i,
            "value": float(table["pred"][i]),
            "reference": float(prev[i]),
        }
        for i in range(len(rows))
    ]
    return {"score": float(eye_tracking), "measures": eye}, {"score": float(reading)}, predictions


def perplexity_task(model, tokenizer, test_arrow, max_items, batch_size, window) -> tuple[dict, list[dict]]:
    """Token-level perplexity over the test documents, each as <s> ... </s> like the training data."""
    table = read_arrow(test_arrow)
    keep = subsample(table.num_rows, max_items, "perplexity")
    texts = table.column("text").take(keep).to_pylist()
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    docs = [[tokenizer.bos_token_id, *doc, tokenizer.eos_token_id] for doc in ids]
    nlls = document_nlls(model, docs, window, batch_size)
    total, count = sum(n for n, _ in nlls), sum(c for _, c in nlls)
    rows = [
        {"task": "perplexity", "subtask": "test", "item": int(i), "value": n, "tokens": c}
        for i, (n, c) in zip(keep, nlls)
    ]
    return {"score": math.exp(total / count), "tokens": count, "documents": len(docs)}, rows


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    data_dir: str | os.PathLike,
    test_arrow: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    max_items: int | None = None,
    batch_size: int = 64,
    window: int | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Write `scores.json` and `predictions.parquet` for one checkpoint and return the scores."""
    for task in TASK_DIRS:  # every data directory is checked before any model work
        task_dir(data_dir, task)
    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(checkpoint, device)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    window = window or model.config.max_position_embeddings
    start = time.perf_counter()
    results, rows = {}, []
    results["perplexity"], part = perplexity_task(model, tokenizer, test_arrow, max_items, batch_size, window)
    rows += part
    for task in CHOICE_TASKS:
        results[task], part = choice_task(model, tokenizer, data_dir, task, max_items, batch_size)
        rows += part
    results["wug"], part = wug_task(model, tokenizer, data_dir, max_items, batch_size)
    rows += part
    results["eye_tracking"], results["reading"], part = reading_task(model, tokenizer, data_dir, batch_size)
    rows += part
    scores = {
        "checkpoint": str(checkpoint),
        "scores": {task: round(result["score"], 6) for task, result in results.items()},
        "details": results,
        "max_items_per_task": max_items,
        "window": window,
        "predictions": VALUE_MEANING,
    }
    write_predictions(rows, Path(out_dir) / "predictions.parquet")
    write_json(scores, Path(out_dir) / "scores.json")
    print(f"evaluated {checkpoint} in {time.perf_counter() - start:.1f} s: {scores['scores']}")
    return scores


def evaluate_run(
    run_dir: str | os.PathLike,
    steps: list[int],
    data_dir: str | os.PathLike,
    test_arrow: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    max_items: int | None = None,
    batch_size: int = 64,
    window: int | None = None,
    threads: int = 1,
) -> None:
    """Evaluate a run's checkpoints into `out_dir/step<N>/`; a killed job keeps what it finished.

    Work goes to `<out_dir>.partial/` (Snakemake deletes a job's outputs before it reruns it) and moves
    into place at the end. Finished checkpoints are kept only for the same training run (its
    metrics.csv) and the same evaluation settings.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    missing = [f"step{step}" for step in steps if not (run_dir / f"step{step}").is_dir()]
    if missing:
        raise DataError(f"{run_dir}: no {', '.join(missing)}. Train the run first (rerun Snakemake).")
    settings = {"max_items": max_items, "batch_size": batch_size, "window": window}
    key = {"run": sha256_file(run_dir / "metrics.csv"), "data_dir": str(data_dir), **settings}
    work = work_dir(out_dir)
    stamp = work / "evaluating.json"
    if work.exists() and (not stamp.exists() or read_json(stamp) != key):
        print(f"discarding {work}: it belongs to other settings or another training run")
        shutil.rmtree(work)
    write_json(key, stamp)
    for step in steps:
        if (work / f"step{step}/scores.json").exists():
            print(f"keeping step {step}, evaluated by an earlier attempt")
            continue
        evaluate_checkpoint(
            run_dir / f"step{step}", data_dir, test_arrow, work / f"step{step}", **settings, threads=threads
        )
    stamp.unlink()
    move_into_place(work, out_dir)


def write_predictions(rows: list[dict], path: Path) -> None:
    columns = {name: [row.get(name) for row in rows] for name in PREDICTIONS.names}
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pydict(columns, schema=PREDICTIONS), tmp)
