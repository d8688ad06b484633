"""The vLLM side of the backend: one model holding the expert and amateur LLaMA stacks.

vLLM sees a single causal LM whose `compute_logits` returns `cdsynth.synth.scoring.next_token_scores`, so its
sampler draws from exactly the distribution the torch engine draws from. Both stacks run in vLLM's
attention kernels with their own paged KV cache. The amateur may be narrower than the expert: the
forward pass returns both hidden states side by side, and `compute_logits` splits them again.

This module imports vLLM; only vLLM's engine imports it, through the registration in
`cdsynth.synth.vllm_backend.register`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from transformers import LlamaConfig
from vllm.config import VllmConfig
from vllm.model_executor.models.llama import LlamaForCausalLM

from cdsynth.spec.synthesis import Scoring
from cdsynth.synth.scoring import next_token_scores

AMATEUR = "amateur."


def with_hf_config(vllm_config: VllmConfig, hf_config: LlamaConfig) -> VllmConfig:
    """The same engine settings for a stack with another architecture (vLLM reads it from hf_config).

    The copy shares the compilation config, so both stacks' attention layers register in one forward
    context and both get KV cache.
    """
    model_config = copy.copy(vllm_config.model_config)
    model_config.hf_config = hf_config
    config = copy.copy(vllm_config)
    config.model_config = model_config
    return config


class ContrastivePairForCausalLM(nn.Module):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        pair = config.cdsynth_pair
        self.config = config
        self.scoring = Scoring(**pair["scoring"])
        self.expert = LlamaForCausalLM(vllm_config=vllm_config, prefix=f"{prefix}expert")
        self.amateur = None
        if pair["amateur"] is not None:
            amateur_config = with_hf_config(vllm_config, LlamaConfig(**pair["amateur"]))
            self.amateur = LlamaForCausalLM(vllm_config=amateur_config, prefix=f"{prefix}amateur")
            self.secondary_weights = [amateur_weights(pair["amateur_dir"])]

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.expert.embed_input_ids(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors=None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = self.expert(input_ids, positions, intermediate_tensors, inputs_embeds)
        if self.amateur is None:
            return hidden
        return torch.cat([hidden, self.amateur(input_ids, positions)], dim=-1)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        width = self.config.hidden_size
        expert = self.expert.compute_logits(hidden_states[..., :width])
        if expert is None:  # a tensor-parallel rank that does not sample (vLLM gathers logits elsewhere)
            return None
        amateur = None if self.amateur is None else self.amateur.compute_logits(hidden_states[..., width:])
        return next_token_scores(expert, amateur, self.scoring)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """The expert's tensors come unprefixed from the pair directory, the amateur's as `amateur.*`."""
        expert, amateur = [], []
        for name, tensor in weights:
            if name.startswith(AMATEUR):
                amateur.append((name.removeprefix(AMATEUR), tensor))
            else:
                expert.append((name, tensor))
        loaded = {f"expert.{name}" for name in self.expert.load_weights(expert)}
        if self.amateur is not None:
            loaded |= {AMATEUR + name for name in self.amateur.load_weights(amateur)}
        return loaded


def amateur_weights(amateur_dir: str):
    from vllm.model_executor.model_loader.default_loader import DefaultModelLoader

    return DefaultModelLoader.Source(amateur_dir, revision=None, prefix=AMATEUR)
