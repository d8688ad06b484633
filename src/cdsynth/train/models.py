"""LLaMA architectures named in the config, built as Hugging Face `LlamaForCausalLM`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from cdsynth.spec.training import Architecture


def llama_config(arch: Architecture, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """A LlamaConfig from a config `models:` entry, with vocabulary and special ids from the tokenizer."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.hidden,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.key_value_heads,
        intermediate_size=arch.intermediate,
        max_position_embeddings=arch.max_positions,
        rope_theta=arch.rope_theta,
        tie_word_embeddings=arch.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="sdpa",
    )


def build_model(arch: Architecture, tokenizer: PreTrainedTokenizerBase, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model; the same seed always gives the same weights."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(arch, tokenizer))


def save_model(model: LlamaForCausalLM, directory: str | os.PathLike) -> None:
    """`save_pretrained`, with the config keys transformers 4.x reads beside the ones 5.x writes.

    5.x keeps the rotary base in `rope_parameters` and the weights' type in `dtype`; 4.x (e.g. the official
    BabyLM 2025 pipeline's 4.51.3) reads `rope_theta` and `torch_dtype`, and would silently fall back to its
    defaults without them.
    """
    model.save_pretrained(directory)
    config_file = Path(directory) / "config.json"
    config = json.loads(config_file.read_text())
    config["rope_theta"] = model.config.rope_parameters["rope_theta"]
    config["torch_dtype"] = config.get("dtype", "float32")
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def count_parameters(model: torch.nn.Module, exclude_embeddings: bool = False) -> int:
    total = sum(p.numel() for p in model.parameters())
    if exclude_embeddings:
        total -= model.get_input_embeddings().weight.numel()
    return total


def flops_per_token(model: LlamaForCausalLM, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward): 6N plus attention, as in the PaLM appendix."""
    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    attention = 12 * cfg.num_hidden_layers * cfg.num_attention_heads * head_dim * seq_len
    return 6 * count_parameters(model, exclude_embeddings=True) + attention
