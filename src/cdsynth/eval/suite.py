"""Evaluate checkpoints: perplexity on the corpus test split and the BabyLM 2025 zero-shot suite.

Scores follow the official pipeline (`docs/evaluation.md`): accuracy per subtask then
macro-averaged (Entity Tracking: per file x numops, then per file group, then over the groups). WUG gets
both of its definitions: the paper's accuracy (`wug_accuracy`: the first variant has the higher
log-probability) and the official pipeline's Spearman correlation (x100) of P(first variant) with the human
ratio (`wug_spearman`). Reading and Eye Tracking are the R2 gain of adding the word's surprisal to a
baseline OLS regression, x100; the surprisal is the official pipeline's by default (`official_queries`).
Every item's numbers go into a predictions table so that the paired bootstrap can resample them later.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from transformers import AutoTokenizer

from cdsynth.checkpoints import load_causal_lm
from cdsynth.errors import DataError
from cdsynth.eval.items import load_items, load_reading, subsample
from cdsynth.eval.lm_scoring import completion_logprobs, document_nlls, next_token_logprobs
from cdsynth.eval.metrics import CHOICE_TASKS, aggregate, reading_scores, reading_table, spearman
from cdsynth.eval.official import write_checkpoint_files, write_submission
from cdsynth.io import atomic_path, read_arrow, read_json, sha256_file, write_json
from cdsynth.resumable import KEY_FILE, WorkDir
from cdsynth.spec.eval_data import check_data_dir
from cdsynth.spec.evaluation import Evaluation
from cdsynth.spec.paths import EVALUATED_FILE
from cdsynth.spec.schedule import evaluated_steps
from cdsynth.threads import set_torch_threads

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
    "wug": "correct = the first variant has the higher log-prob, value = P(first), reference = human ratio",
    "reading": "value = surprisal of the word, reference = surprisal of the previous word",
    "perplexity": "value = summed NLL of the document, tokens = predicted tokens",
}


def score_candidates(model, tokenizer, items, batch_size: int, task: str) -> tuple[list[np.ndarray], int]:
    """(summed completion log-probabilities of every candidate grouped per item, sequences cut to fit)."""
    pairs = [pair for item in items for pair in item.candidates]
    flat, cut = completion_logprobs(model, tokenizer, pairs, batch_size, desc=task)
    bounds = np.cumsum([0] + [len(item.candidates) for item in items])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])], cut


def choice_rows(task: str, items, scores: list[np.ndarray]) -> list[dict]:
    """One predictions row per item; it is correct when the first candidate wins (ties go to it)."""
    return [
        {
            "task": task,
            "subtask": item.subtask,
            "item": item.index,
            "logprobs": logprobs.tolist(),
            "correct": bool(np.argmax(logprobs) == 0),
        }
        for item, logprobs in zip(items, scores)
    ]


def accuracy(task: str, rows: list[dict]) -> tuple[float, dict[str, float]]:
    """(the task's accuracy in %, per-subtask accuracies) from its predictions rows."""
    correct: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        correct[row["subtask"]].append(row["correct"])
    per_subtask = {name: 100 * float(np.mean(hits)) for name, hits in correct.items()}
    return float(aggregate(task, per_subtask)), per_subtask


def choice_task(model, tokenizer, data_dir, task, max_items, batch_size) -> tuple[dict, list[dict]]:
    """Accuracy (%) per subtask and its aggregate; the correct candidate is the first."""
    items = load_items(data_dir, task, max_items)
    scores, cut = score_candidates(model, tokenizer, items, batch_size, task)
    rows = choice_rows(task, items, scores)
    score, per_subtask = accuracy(task, rows)
    return {"score": score, "subtasks": per_subtask, "truncated": cut}, rows


def wug_task(model, tokenizer, data_dir, max_items, batch_size) -> tuple[dict[str, dict], list[dict]]:
    """WUG under both definitions: {"wug_accuracy": ..., "wug_spearman": ...} and one row per item.

    Accuracy (the paper's): the share of items whose first variant has the higher summed log-probability.
    Spearman (the official pipeline's since 2025-08-02): P(first variant), the softmax of the two, against
    the human ratio.
    """
    items = load_items(data_dir, "wug", max_items)
    scores, cut = score_candidates(model, tokenizer, items, batch_size, "wug")
    rows = choice_rows("wug", items, scores)
    first = np.array([np.exp(lp[0] - np.logaddexp(lp[0], lp[1])) for lp in scores])
    ratios = np.array([item.extra["ratio"] for item in items])
    for row, p, ratio in zip(rows, first, ratios):
        row |= {"value": float(p), "reference": float(ratio)}
    score, _ = accuracy("wug", rows)
    return {
        "wug_accuracy": {"score": score, "truncated": cut},
        "wug_spearman": {"score": float(spearman(first, ratios))},
    }, rows


def word_tokens(tokenizer, text: str) -> list[int]:
    """The token ids of `text` tokenized as a word on its own (no special tokens)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise DataError(f"{text!r} tokenizes to nothing, so the official reading predictor cannot score it.")
    return ids


def official_queries(tokenizer, context: str, word: str) -> list[tuple[str, int]]:
    """The (context, token id) predictions whose product is the official pipeline's P(word | context).

    As its `get_p2` does: the word's first token after the context; then for each later token, the context
    grows by the decoded text so far (a SentencePiece decode drops the word's leading space, so "you are"
    and "watched" go on as "you arewat") and the token's decoded text is tokenized again as a word of its
    own, whose first token is the one scored.
    """
    target = word_tokens(tokenizer, word)
    queries = [(context, target[0])]
    context += tokenizer.decode(target[0])
    for token in target[1:]:
        text = tokenizer.decode(token)
        queries.append((context, word_tokens(tokenizer, text)[0]))
        context += text
    return queries


def word_surprisals(
    model, tokenizer, pairs: list[tuple[str, str]], batch_size: int, predictor: str
) -> tuple[np.ndarray, int]:
    """(-log P(word | context) per (context, word), sequences cut to fit the model).

    "official": the official pipeline's predictor (`official_queries`), every distinct query scored once.
    "joint": the word's tokens scored together after the context, as " " + word in one string.
    """
    if predictor == "joint":
        logprobs, cut = completion_logprobs(
            model, tokenizer, [(context, " " + word) for context, word in pairs], batch_size, "reading"
        )
        return -logprobs, cut
    words = [official_queries(tokenizer, context, word) for context, word in pairs]
    unique = list(dict.fromkeys(query for queries in words for query in queries))
    logprobs, cut = next_token_logprobs(model, tokenizer, unique, batch_size, "reading")
    found = dict(zip(unique, logprobs))
    return np.array([-sum(found[query] for query in queries) for queries in words]), cut


def reading_task(
    model, tokenizer, data_dir, batch_size, predictor: str = "official"
) -> tuple[dict, dict, list[dict]]:
    """Eye Tracking (mean over four first-pass measures) and self-paced Reading (with spillover).

    Always on all 1,726 words: the regressions need them, and scoring them is cheap. A row has a previous
    word's surprisal only where its `prev_item` is present, as the official pipeline reads the data.
    """
    rows = load_reading(data_dir)
    has_prev = [r["prev_item"] is not None for r in rows]
    pairs = [(r["item"], r["word"]) for r in rows]
    pairs += [(r["prev_item"], r["prev_word"]) for r, ok in zip(rows, has_prev) if ok]
    surprisal, cut = word_surprisals(model, tokenizer, pairs, batch_size, predictor)
    prev_scores = iter(surprisal[len(rows) :])
    prev = np.array([next(prev_scores) if ok else np.nan for ok in has_prev])
    table = reading_table(rows, surprisal[: len(rows)], prev)
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
    eye_result = {"score": float(eye_tracking), "measures": eye, "truncated": cut}
    return eye_result, {"score": float(reading), "truncated": cut}, predictions


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
    test_arrow: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: Evaluation,
    threads: int = 1,
) -> dict[str, Any]:
    """Write `scores.json` and `predictions.parquet` for one checkpoint and return the scores.

    `official/` gets the same predictions as the official pipeline's files (`cdsynth.eval.official`).
    """
    data_dir, max_items, batch_size = settings.data_dir, settings.max_items_per_task, settings.batch_size
    check_data_dir(data_dir)  # every task's data is there before any model work
    set_torch_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(checkpoint, device, dtype=settings.dtype)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    window = settings.window or model.config.max_position_embeddings
    start = time.perf_counter()
    results, rows = {}, []
    results["perplexity"], part = perplexity_task(model, tokenizer, test_arrow, max_items, batch_size, window)
    rows += part
    for task in CHOICE_TASKS:
        results[task], part = choice_task(model, tokenizer, data_dir, task, max_items, batch_size)
        rows += part
    wug, part = wug_task(model, tokenizer, data_dir, max_items, batch_size)
    results |= wug
    rows += part
    results["eye_tracking"], results["reading"], part = reading_task(
        model, tokenizer, data_dir, batch_size, settings.reading_predictor
    )
    rows += part
    scores = {
        "checkpoint": str(checkpoint),
        "scores": {task: round(result["score"], 6) for task, result in results.items()},
        "details": results,
        "max_items_per_task": max_items,
        "window": window,
        "reading_predictor": settings.reading_predictor,
        "dtype": settings.dtype,
        "predictions": VALUE_MEANING,
    }
    out_dir = Path(out_dir)
    write_predictions(rows, out_dir / "predictions.parquet")
    write_checkpoint_files(out_dir / "predictions.parquet", data_dir, out_dir / "official", max_items)
    write_json(scores, out_dir / "scores.json")
    print(f"evaluated {checkpoint} in {time.perf_counter() - start:.1f} s: {scores['scores']}")
    return scores


def evaluate_run(
    run_dir: str | os.PathLike,
    stride: int,
    test_arrow: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: Evaluation,
    threads: int = 1,
    *,
    model_name: str,
) -> None:
    """Evaluate a run's checkpoints into `out_dir/step<N>/`; a killed job keeps what it finished.

    Which checkpoints: every `stride`-th the run saved, counted back from the last, and every one that
    carries a BabyLM mark (`cdsynth.spec.schedule.evaluated_steps`); `out_dir/checkpoints.json` lists them
    with what each has seen. Then `out_dir/submission/<model_name>/` holds the official BabyLM files of
    the run (`cdsynth.eval.official.write_submission`).

    The work is resumable (`cdsynth.resumable`): finished checkpoints are kept only for the same training
    run (its metrics.csv) and the same evaluation settings, which `out_dir/job.json` records.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    saved = saved_checkpoints(run_dir)
    marked = [step for step, info in saved.items() if info.get("mark")]
    steps = evaluated_steps(sorted(saved), stride, marked)
    key = {"run": sha256_file(run_dir / "metrics.csv"), **asdict(settings)}
    job = WorkDir(out_dir, key)
    work = job.open()
    for step in steps:
        if (work / f"step{step}/scores.json").exists():
            print(f"keeping step {step}, evaluated by an earlier attempt")
            continue
        evaluate_checkpoint(run_dir / f"step{step}", test_arrow, work / f"step{step}", settings, threads)
    write_json([saved[step] for step in steps], work / EVALUATED_FILE)
    write_submission(work, run_dir, steps, model_name, settings.data_dir, settings.max_items_per_task)
    job.publish([*(f"step{step}" for step in steps), EVALUATED_FILE, "submission", KEY_FILE])


def saved_checkpoints(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Step -> what a finished run's checkpoint records (`checkpoint.json`), for every step it saved."""
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise DataError(f"{metrics}: not found. Train the run first (rerun Snakemake).")
    with open(metrics, newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    missing = [f"step{step}" for step in steps if not (run_dir / f"step{step}/checkpoint.json").is_file()]
    if missing:
        raise DataError(f"{run_dir}: no {', '.join(missing)}. Train the run again (rerun Snakemake).")
    return {step: read_json(run_dir / f"step{step}/checkpoint.json") for step in steps}


def write_predictions(rows: list[dict], path: Path) -> None:
    columns = {name: [row.get(name) for row in rows] for name in PREDICTIONS.names}
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pydict(columns, schema=PREDICTIONS), tmp)
