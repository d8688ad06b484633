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
def token_logprobs(
    model, sequences: list[list[int]], wanted: list[list[bool]], batch_size: int, desc: str = ""
) -> list[np.ndarray]:
    """log P(token i | tokens < i) for every i >= 1 with wanted[i], per sequence (float64 arrays).

    The output layer runs only on the positions that predict a wanted token: for a long prompt with a
    short completion (Entity Tracking) that is most of the cost of a large vocabulary saved.
    """
    device = model.device
    body, head = model.base_model, model.get_output_embeddings()
    pad = model.config.pad_token_id or 0
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    batches = list(length_batches([len(s) for s in sequences], batch_size))
    for batch in tqdm(batches, desc=desc, unit="batch", mininterval=10, disable=not desc):
        width = len(sequences[batch[0]])
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        targets = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, index in enumerate(batch):
            ids[row, : len(sequences[index])] = torch.tensor(sequences[index])
            mask[row, : len(sequences[index])] = 1
            targets[row, 1 : len(sequences[index])] = torch.tensor(wanted[index][1:], dtype=torch.bool)
        ids, mask, targets = ids.to(device), mask.to(device), targets.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state
            rows, cols = targets.nonzero(as_tuple=True)
            logits = head(hidden[rows, cols - 1])
        picked = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[rows, cols, None]).squeeze(-1)
        picked = picked.double().cpu().numpy()
        counts = targets.sum(dim=1).tolist()
        for index, chunk in zip(batch, np.split(picked, np.cumsum(counts)[:-1])):
            out[index] = chunk
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
    logprobs = token_logprobs(
        model, [ids for ids, _ in encoded], [mask for _, mask in encoded], batch_size, desc
    )
    return np.array([float(lp.sum()) for lp in logprobs])


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
