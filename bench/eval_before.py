"""Frozen copy of the evaluation before shared-prefix scoring, kept as the benchmark's baseline.

Nothing in src/ imports it: `bench/eval_throughput.py` times it beside `cdsynth.eval.suite`. It is the
scoring loop and the task functions of commit a306471 (`src/cdsynth/eval/lm_scoring.py`, `suite.py`);
what they call and what has not changed since (tokenizing candidates, token budgets, the chunked
log-softmax, reading the items, the metrics) is the package's own, so only these are frozen:

- every sequence is scored whole, an item's candidates each running their common prefix again;
- each task tokenizes its items and is scored in batches of its own, once per checkpoint.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm import tqdm

from cdsynth.eval.items import load_items, load_reading, subsample
from cdsynth.eval.lm_scoring import (
    encode_candidates,
    fit_context,
    picked_logprobs,
    position_limit,
    to_device,
    token_batches,
)
from cdsynth.eval.metrics import reading_scores, reading_table, spearman
from cdsynth.eval.suite import accuracy, choice_rows, official_queries
from cdsynth.io import read_arrow

# --- scoring, as in a306471's cdsynth.eval.lm_scoring ----------------------------------------------------


@torch.inference_mode()
def token_logprobs(
    model, sequences: list[list[int]], wanted: list[list[bool]], batch_size: int, desc: str = ""
) -> list[np.ndarray]:
    """log P(token i | tokens < i) for every i >= 1 with wanted[i], per sequence (float64 arrays).

    The output layer runs only on the positions that predict a wanted token: for a long prompt with a
    short completion (Entity Tracking) that is most of the cost of a large vocabulary saved. Batches hold
    up to `batch_size` x the longest length tokens (`token_batches`). Nothing in the loop waits for the
    device: the inputs and the positions to pick are built on the CPU, and the picked log-probabilities
    stay on the device until all batches are done.
    """
    device = model.device
    body, head = model.base_model, model.get_output_embeddings()
    pad = model.config.pad_token_id or 0
    batches = list(token_batches([len(s) for s in sequences], batch_size))
    picked, counts = [], []
    for batch in tqdm(batches, desc=desc, unit="batch", mininterval=10, disable=not desc):
        width = len(sequences[batch[0]])
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        targets = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, index in enumerate(batch):
            ids[row, : len(sequences[index])] = torch.tensor(sequences[index])
            targets[row, 1 : len(sequences[index])] = torch.tensor(wanted[index][1:], dtype=torch.bool)
        rows, cols = targets.nonzero(as_tuple=True)
        counts += targets.sum(dim=1).tolist()
        ids, rows, cols = (to_device(t, device) for t in (ids, rows, cols))
        # No attention mask: the padding is on the right and the model causal, so no scored position sees
        # a pad. A mask would change nothing but cost a host sync (transformers checks it for padding) and
        # keep SDPA off its FlashAttention kernels.
        hidden = body(input_ids=ids, use_cache=False).last_hidden_state
        picked.append(picked_logprobs(head, hidden[rows, cols - 1], ids[rows, cols]))
    values = torch.cat(picked).double().cpu().numpy() if picked else np.zeros(0)
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    order = [index for batch in batches for index in batch]
    for index, chunk in zip(order, np.split(values, np.cumsum(counts)[:-1])):
        out[index] = chunk
    return out


def completion_logprobs(
    model, tokenizer, pairs: list[tuple[str, str]], batch_size: int, desc: str = ""
) -> tuple[np.ndarray, int]:
    """(summed log-probability of each completion given its prefix, sequences cut to fit the model)."""
    encoded = encode_candidates(tokenizer, pairs)
    ids, wanted, cut = fit_context(
        [ids for ids, _ in encoded], [mask for _, mask in encoded], position_limit(model)
    )
    logprobs = token_logprobs(model, ids, wanted, batch_size, desc)
    return np.array([float(lp.sum()) for lp in logprobs]), cut


def next_token_logprobs(
    model, tokenizer, queries: list[tuple[str, int]], batch_size: int, desc: str = ""
) -> tuple[np.ndarray, int]:
    """(log P(token | context) per (context, token id), sequences cut to fit the model).

    The context is tokenized with the tokenizer's special tokens and the token appended, so the one
    scored position is the model's prediction at the end of the tokenized context.
    """
    contexts = tokenizer([context for context, _ in queries])["input_ids"]
    sequences = [[*ids, token] for ids, (_, token) in zip(contexts, queries)]
    wanted = [[False] * len(ids) + [True] for ids in contexts]
    sequences, wanted, cut = fit_context(sequences, wanted, position_limit(model))
    logprobs = token_logprobs(model, sequences, wanted, batch_size, desc)
    return np.array([float(lp[-1]) for lp in logprobs]), cut


def document_nlls(model, documents: list[list[int]], window: int, batch_size: int) -> list[tuple[float, int]]:
    """(summed NLL, predicted tokens) per document, every token after the first predicted once.

    Documents longer than `window` are cut into windows that overlap by one token, so each window's first
    token is only context and every later token is predicted exactly once.
    """
    pieces, owners = [], []
    for doc, tokens in enumerate(documents):
        for start in range(0, max(1, len(tokens) - 1), window - 1):
            pieces.append(tokens[start : start + window])
            owners.append(doc)
    logprobs = token_logprobs(model, pieces, [[True] * len(p) for p in pieces], batch_size, desc="perplexity")
    totals = [[0.0, 0] for _ in documents]
    for owner, lp in zip(owners, logprobs):
        totals[owner][0] -= float(lp.sum())
        totals[owner][1] += len(lp)
    return [(nll, count) for nll, count in totals]


# --- the tasks, as in a306471's cdsynth.eval.suite -------------------------------------------------------


def score_candidates(model, tokenizer, items, batch_size: int, task: str) -> tuple[list[np.ndarray], int]:
    """(summed completion log-probabilities of every candidate grouped per item, sequences cut to fit)."""
    pairs = [pair for item in items for pair in item.candidates]
    flat, cut = completion_logprobs(model, tokenizer, pairs, batch_size, desc=task)
    bounds = np.cumsum([0] + [len(item.candidates) for item in items])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])], cut


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
