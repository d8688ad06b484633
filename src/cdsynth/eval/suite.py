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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from transformers import AutoTokenizer

from cdsynth.checkpoints import load_causal_lm, load_config
from cdsynth.errors import DataError
from cdsynth.eval.items import load_items, load_reading, subsample
from cdsynth.eval.lm_scoring import encode_candidates, fit_context, position_limit, token_logprobs
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


@dataclass
class Task:
    """One task's sequences to score, tokenized once per evaluation job, and how they become its results.

    `finish(logprobs, cut)` takes each sequence's wanted log-probabilities and how many were cut to fit the
    model, and returns ({result name: result}, predictions rows).
    """

    name: str
    sequences: list[list[int]]
    wanted: list[list[bool]]
    groups: list[list[int]]  # indices whose sequences may share a prefix (an item's candidates)
    finish: Callable[[list[np.ndarray], int], tuple[dict[str, dict], list[dict]]]


def candidate_task(name: str, tokenizer, pairs: list[tuple[str, str]], sizes: list[int], finish) -> Task:
    """A task of (prefix, completion) candidates, `sizes[k]` of them for item k; `finish` gets the
    summed log-probability of each item's candidates and the number cut."""
    encoded = encode_candidates(tokenizer, pairs)
    bounds = np.cumsum([0, *sizes]).tolist()
    groups = [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def per_item(logprobs: list[np.ndarray], cut: int):
        sums = np.array([float(lp.sum()) for lp in logprobs])
        return finish([sums[group] for group in groups], cut)

    return Task(name, [ids for ids, _ in encoded], [mask for _, mask in encoded], groups, per_item)


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


def choice_task(tokenizer, data_dir, task: str, max_items: int | None) -> Task:
    """Accuracy (%) per subtask and its aggregate; the correct candidate is the first."""
    items = load_items(data_dir, task, max_items)

    def finish(scores: list[np.ndarray], cut: int):
        rows = choice_rows(task, items, scores)
        score, per_subtask = accuracy(task, rows)
        return {task: {"score": score, "subtasks": per_subtask, "truncated": cut}}, rows

    pairs = [pair for item in items for pair in item.candidates]
    return candidate_task(task, tokenizer, pairs, [len(item.candidates) for item in items], finish)


def wug_task(tokenizer, data_dir, max_items: int | None) -> Task:
    """WUG under both definitions: "wug_accuracy" and "wug_spearman", and one row per item.

    Accuracy (the paper's): the share of items whose first variant has the higher summed log-probability.
    Spearman (the official pipeline's since 2025-08-02): P(first variant), the softmax of the two, against
    the human ratio.
    """
    items = load_items(data_dir, "wug", max_items)

    def finish(scores: list[np.ndarray], cut: int):
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

    pairs = [pair for item in items for pair in item.candidates]
    return candidate_task("wug", tokenizer, pairs, [len(item.candidates) for item in items], finish)


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


def surprisal_task(tokenizer, pairs: list[tuple[str, str]], predictor: str, finish) -> Task:
    """-log P(word | context) per (context, word), handed to `finish(surprisals, cut)`.

    "official": the official pipeline's predictor (`official_queries`): each distinct query is the
    context tokenized with the tokenizer's special tokens and the token appended, scored once; the queries
    of one context are a group, whose tokenized contexts share their first tokens.
    "joint": the word's tokens scored together after the context, as " " + word in one string.
    """
    if predictor == "joint":
        joint = [(context, " " + word) for context, word in pairs]
        return candidate_task(
            "reading",
            tokenizer,
            joint,
            [1] * len(pairs),
            lambda sums, cut: finish(-np.concatenate(sums), cut),
        )
    words = [official_queries(tokenizer, context, word) for context, word in pairs]
    unique = list(dict.fromkeys(query for queries in words for query in queries))
    contexts = tokenizer([context for context, _ in unique])["input_ids"]
    index = {query: k for k, query in enumerate(unique)}
    group_of: dict[int, str] = {}  # a query repeated under another context stays in its first group
    for (context, _), queries in zip(pairs, words):
        for query in queries:
            group_of.setdefault(index[query], context)
    by_context: dict[str, list[int]] = defaultdict(list)
    for member, context in group_of.items():
        by_context[context].append(member)
    groups = list(by_context.values())

    def per_word(logprobs: list[np.ndarray], cut: int):
        return finish(np.array([-sum(logprobs[index[q]][-1] for q in queries) for queries in words]), cut)

    sequences = [[*ids, token] for ids, (_, token) in zip(contexts, unique)]
    wanted = [[False] * len(ids) + [True] for ids in contexts]
    return Task("reading", sequences, wanted, groups, per_word)


def reading_task(tokenizer, data_dir, predictor: str = "official") -> Task:
    """Eye Tracking (mean over four first-pass measures) and self-paced Reading (with spillover).

    Always on all 1,726 words: the regressions need them, and scoring them is cheap. A row has a previous
    word's surprisal only where its `prev_item` is present, as the official pipeline reads the data.
    """
    rows = load_reading(data_dir)
    has_prev = [r["prev_item"] is not None for r in rows]
    pairs = [(r["item"], r["word"]) for r in rows]
    pairs += [(r["prev_item"], r["prev_word"]) for r, ok in zip(rows, has_prev) if ok]

    def finish(surprisal: np.ndarray, cut: int):
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
        return {
            "eye_tracking": {"score": float(eye_tracking), "measures": eye, "truncated": cut},
            "reading": {"score": float(reading), "truncated": cut},
        }, predictions

    return surprisal_task(tokenizer, pairs, predictor, finish)


def perplexity_task(tokenizer, test_arrow, max_items: int | None, window: int) -> Task:
    """Token-level perplexity over the test documents, each as <s> ... </s> like the training data.

    Documents longer than `window` are cut into windows that overlap by one token, so each window's first
    token is only context and every later token is predicted exactly once.
    """
    table = read_arrow(test_arrow)
    keep = subsample(table.num_rows, max_items, "perplexity")
    texts = table.column("text").take(keep).to_pylist()
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    docs = [[tokenizer.bos_token_id, *doc, tokenizer.eos_token_id] for doc in ids]
    pieces, owners = [], []
    for doc, tokens in enumerate(docs):
        for start in range(0, max(1, len(tokens) - 1), window - 1):
            pieces.append(tokens[start : start + window])
            owners.append(doc)

    def finish(logprobs: list[np.ndarray], cut: int):
        nlls, counts = np.zeros(len(docs)), np.zeros(len(docs), dtype=np.int64)
        for owner, lp in zip(owners, logprobs):
            nlls[owner] -= float(lp.sum())
            counts[owner] += len(lp)
        rows = [
            {"task": "perplexity", "subtask": "test", "item": int(i), "value": float(n), "tokens": int(c)}
            for i, n, c in zip(keep, nlls, counts)
        ]
        result = {
            "score": math.exp(nlls.sum() / counts.sum()),
            "tokens": int(counts.sum()),
            "documents": len(docs),
        }
        return {"perplexity": result}, rows

    return Task("perplexity", pieces, [[True] * len(p) for p in pieces], [], finish)


def suite_tasks(tokenizer, test_arrow, settings: Evaluation, window: int) -> list[Task]:
    """Every task of the suite, tokenized: perplexity, the choice tasks, WUG, Reading and Eye Tracking."""
    data_dir, max_items = settings.data_dir, settings.max_items_per_task
    return [
        perplexity_task(tokenizer, test_arrow, max_items, window),
        *(choice_task(tokenizer, data_dir, task, max_items) for task in CHOICE_TASKS),
        wug_task(tokenizer, data_dir, max_items),
        reading_task(tokenizer, data_dir, settings.reading_predictor),
    ]


def score_tasks(model, tasks: list[Task], batch_size: int) -> tuple[dict[str, dict], list[dict]]:
    """(results, predictions rows) of `tasks` on `model`.

    Each task is scored in batches of its own. All tasks in one pass was measured slower on CPU (a demo
    checkpoint, 30 items per subtask: 6.2 s against 5.4 s): the token budget then follows Entity
    Tracking's longest prompt, and BLiMP's short sentences go thousands to a batch.
    """
    limit = position_limit(model)
    results, rows = {}, []
    for task in tasks:
        sequences, wanted, cut = fit_context(task.sequences, task.wanted, limit)
        logprobs = token_logprobs(model, sequences, wanted, batch_size, task.name, task.groups)
        result, part = task.finish(logprobs, cut)
        results |= result
        rows += part
    return results, rows


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    test_arrow: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: Evaluation,
    threads: int = 1,
    tasks: list[Task] | None = None,
) -> dict[str, Any]:
    """Write `scores.json` and `predictions.parquet` for one checkpoint and return the scores.

    `tasks` are the suite tokenized with this checkpoint's tokenizer (`suite_tasks`), made here when not
    given. `official/` gets the same predictions as the official pipeline's files (`cdsynth.eval.official`).
    """
    data_dir, max_items = settings.data_dir, settings.max_items_per_task
    check_data_dir(data_dir)  # every task's data is there before any model work
    set_torch_threads(threads)
    window = evaluation_window(checkpoint, settings)
    start = time.perf_counter()
    tasks = tasks or suite_tasks(AutoTokenizer.from_pretrained(checkpoint), test_arrow, settings, window)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(checkpoint, device, dtype=settings.dtype)
    results, rows = score_tasks(model, tasks, settings.batch_size)
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


def evaluation_window(checkpoint: str | os.PathLike, settings: Evaluation) -> int:
    """Tokens per perplexity window: the setting, or the checkpoint's context length when unset."""
    return settings.window or load_config(checkpoint).max_position_embeddings


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

    The suite is tokenized once for all the checkpoints: a run's checkpoints carry the same tokenizer,
    which is checked (its files' digests) rather than assumed.

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
    prepared: dict[tuple, list[Task]] = {}  # the tokenized suite per (tokenizer digest, window)
    for step in steps:
        if (work / f"step{step}/scores.json").exists():
            print(f"keeping step {step}, evaluated by an earlier attempt")
            continue
        checkpoint = run_dir / f"step{step}"
        window = evaluation_window(checkpoint, settings)
        tokenizer_key = (tokenizer_digest(checkpoint), window)
        if tokenizer_key not in prepared:
            tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            prepared[tokenizer_key] = suite_tasks(tokenizer, test_arrow, settings, window)
        tasks = prepared[tokenizer_key]
        evaluate_checkpoint(checkpoint, test_arrow, work / f"step{step}", settings, threads, tasks)
    write_json([saved[step] for step in steps], work / EVALUATED_FILE)
    write_submission(work, run_dir, steps, model_name, settings.data_dir, settings.max_items_per_task)
    job.publish([*(f"step{step}" for step in steps), EVALUATED_FILE, "submission", KEY_FILE])


def tokenizer_digest(checkpoint: Path) -> tuple[str, ...]:
    """The digests of a checkpoint's tokenizer files: equal digests, the same tokenization."""
    names = sorted(p.name for p in checkpoint.iterdir() if p.name.startswith(("tokenizer", "special_tokens")))
    return tuple(f"{name}:{sha256_file(checkpoint / name)}" for name in names)


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
