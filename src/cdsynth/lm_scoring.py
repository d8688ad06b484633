"""Log-probabilities from a causal LM: completion spans of candidate strings, and document NLLs.

A candidate is scored as the official BabyLM pipeline does: the whole string (prefix + completion) is
tokenized with the tokenizer's special tokens, and the log-probabilities of the tokens whose characters
overlap the completion are summed. Batches are sorted by length so that little padding is computed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm


def encode_candidates(tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[bool]]]:
    """(token ids, scored?) per (prefix, completion): a token counts if its span overlaps the completion."""
    texts = [prefix + completion for prefix, completion in pairs]
    encoded = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=True)
    out = []
    for ids, offsets, (prefix, completion) in zip(encoded["input_ids"], encoded["offset_mapping"], pairs):
        start, end = len(prefix), len(prefix) + len(completion)
        out.append((ids, [s < end and e > start and e > s for s, e in offsets]))
    return out


def length_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for begin in range(0, len(order), batch_size):
        yield order[begin : begin + batch_size]


@torch.inference_mode()
def token_logprobs(model, sequences: list[list[int]], batch_size: int, desc: str = "") -> list[np.ndarray]:
    """log P(token i | tokens < i) for i >= 1 of every sequence (float64 arrays of length len - 1)."""
    device = model.device
    pad = model.config.pad_token_id or 0
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    batches = list(length_batches([len(s) for s in sequences], batch_size))
    for batch in tqdm(batches, desc=desc, unit="batch", mininterval=10, disable=not desc):
        width = len(sequences[batch[0]])
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, index in enumerate(batch):
            ids[row, : len(sequences[index])] = torch.tensor(sequences[index])
            mask[row, : len(sequences[index])] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(input_ids=ids, attention_mask=mask).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        picked = logprobs.gather(-1, ids[:, 1:, None]).squeeze(-1).double().cpu().numpy()
        for row, index in enumerate(batch):
            out[index] = picked[row, : len(sequences[index]) - 1]
    return out


def fit_context(ids: list[int], scored: list[bool], limit: int) -> tuple[list[int], list[bool]]:
    """Drop the oldest tokens of a sequence longer than the model's positions (the scored end is kept)."""
    return (ids[-limit:], scored[-limit:]) if len(ids) > limit else (ids, scored)


def completion_logprobs(
    model, tokenizer, pairs: list[tuple[str, str]], batch_size: int, desc: str = ""
) -> np.ndarray:
    """Summed log-probability of each completion given its prefix."""
    limit = model.config.max_position_embeddings
    encoded = [fit_context(ids, scored, limit) for ids, scored in encode_candidates(tokenizer, pairs)]
    logprobs = token_logprobs(model, [ids for ids, _ in encoded], batch_size, desc)
    return np.array(
        [float(lp[np.array(scored[1:], dtype=bool)].sum()) for lp, (_, scored) in zip(logprobs, encoded)]
    )


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
    logprobs = token_logprobs(model, pieces, batch_size, desc="perplexity")
    totals = [[0.0, 0] for _ in documents]
    for owner, lp in zip(owners, logprobs):
        totals[owner][0] -= float(lp.sum())
        totals[owner][1] += len(lp)
    return [(nll, count) for nll, count in totals]
