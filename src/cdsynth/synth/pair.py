"""Loading an expert / amateur pair of Hugging Face causal LMs, checked to share one tokenizer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from cdsynth.checkpoints import load_causal_lm, require_model_dir
from cdsynth.errors import DataError
from cdsynth.synth.dropout import load_dropout_amateur
from cdsynth.synth.engine import Decoder


def vocab_size(model_dir: Path) -> int:
    return json.loads((model_dir / "config.json").read_text())["vocab_size"]


def load_pair_tokenizer(
    expert_dir: str | os.PathLike, amateur_dir: str | os.PathLike | None
) -> PreTrainedTokenizerBase:
    """The expert's tokenizer, once the amateur (if any) is known to share it.

    CD subtracts log-probabilities id by id, so both models must use the same ids for the same text.
    """
    expert_dir = require_model_dir(expert_dir)
    tokenizer = AutoTokenizer.from_pretrained(expert_dir)
    if amateur_dir is None:
        return tokenizer
    amateur_dir = require_model_dir(amateur_dir)
    amateur_tok = AutoTokenizer.from_pretrained(amateur_dir)
    if tokenizer.get_vocab() != amateur_tok.get_vocab():
        raise DataError(
            f"the expert ({expert_dir}) and the amateur ({amateur_dir}) have different tokenizers "
            f"({len(tokenizer)} vs {len(amateur_tok)} tokens): contrastive decoding needs one shared "
            "vocabulary. Use an amateur trained with the expert's tokenizer."
        )
    sizes = vocab_size(expert_dir), vocab_size(amateur_dir)
    if sizes[0] != sizes[1]:
        raise DataError(
            f"vocabulary sizes differ: expert {sizes[0]}, amateur {sizes[1]} ({amateur_dir}). Use models "
            "built with the same tokenizer."
        )
    return tokenizer


def load_decoder(
    expert_dir: str | os.PathLike,
    amateur_dir: str | os.PathLike | None,
    device: torch.device,
    amateur_dropout: float | None = None,
    dtype: str = "float32",
) -> tuple[Decoder, PreTrainedTokenizerBase]:
    """Expert plus amateur (a separate directory, or the expert with attention dropout), and the tokenizer.

    float32 generates as the authors did: fp32 weights with TF32 matmuls on GPU
    (`torch.set_float32_matmul_precision("high")`); bfloat16 is faster on GPU but moves the CD
    distribution (`docs/fidelity.md`).
    """
    torch.set_float32_matmul_precision("high")
    tokenizer = load_pair_tokenizer(expert_dir, amateur_dir)
    expert = load_causal_lm(expert_dir, device, dtype)
    amateur = None
    if amateur_dropout is not None:
        amateur = load_dropout_amateur(expert_dir, device, dtype, amateur_dropout)
    elif amateur_dir is not None:
        amateur = load_causal_lm(amateur_dir, device, dtype)
    return Decoder(expert=expert, amateur=amateur, pad_id=tokenizer.pad_token_id), tokenizer
