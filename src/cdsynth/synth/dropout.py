"""The dropout amateur (the paper's CD-Drop): GOOD's own weights with attention dropout P, nothing else.

It scores in train mode, which switches on every dropout the config holds, not only attention's; and each
family names attention-probability dropout in its own field, and a transformers release may apply it or
not. So the field's name comes from a table, every other dropout field is set to 0, and a probe at load
time decides, on the installed transformers, whether the result is what CD-Drop means before any text is
generated with it. A rule refuses a family only where the probe cannot see the problem.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from cdsynth.checkpoints import load_causal_lm, load_config
from cdsynth.errors import ConfigError

# config.model_type -> the config field that names the family's attention-probability dropout. Whether the
# installed transformers applies it (on the sdpa or the eager path) is checked by the probe at load time.
ATTENTION_DROPOUT = {
    "llama": "attention_dropout",
    "mistral": "attention_dropout",
    "mixtral": "attention_dropout",
    "qwen2": "attention_dropout",
    "qwen3": "attention_dropout",
    "gemma": "attention_dropout",
    "gemma2": "attention_dropout",
    "gemma3_text": "attention_dropout",
    "olmo": "attention_dropout",
    "olmo2": "attention_dropout",
    "phi": "attention_dropout",
    "phi3": "attention_dropout",
    "starcoder2": "attention_dropout",
    "gpt_neox": "attention_dropout",
    "gpt_neo": "attention_dropout",
    "opt": "attention_dropout",
    "bloom": "attention_dropout",
    "falcon": "attention_dropout",
    "gpt2": "attn_pdrop",
    "gptj": "attn_pdrop",
    "gpt_bigcode": "attn_pdrop",
}
FIX = "Use another amateur: `--amateur DIR` (cdsynth generate), or `early:STEP` / `small:MODEL` (config)."


def unsupported(model_type: str, reason: str) -> ConfigError:
    return ConfigError(f"dropout amateur: attention dropout not supported for {model_type} ({reason}). {FIX}")


def residual_refusal(config: PretrainedConfig) -> str | None:
    """Why a family's attention-dropout field cannot make a dropout amateur although the probe passes it.

    The probe sees only whether train mode moves the logits, not where: sequential (non-parallel) Falcon
    blocks also apply `attention_dropout` to the residual stream, so P > 0 moves the logits either way.
    Verified in `FalconDecoderLayer.forward` of transformers 5.19.0 and 5.25.0 (`dropout_add(attention_
    output, residual, config.attention_dropout)`), and asserted against the installed version by
    tests/synth/test_dropout_amateur.py. Whether a family's attention drops anything at all (rotary Falcon
    drops nothing in 5.19 and does in 5.25) is the probe's to decide, not a rule's.
    """
    if config.model_type == "falcon" and not (config.parallel_attn or config.new_decoder_architecture):
        return "this Falcon block also applies `attention_dropout` to its residual stream"
    return None


def attention_dropout_field(config: PretrainedConfig) -> str:
    """The field holding attention-probability dropout, or a ConfigError saying why there is none."""
    field = ATTENTION_DROPOUT.get(config.model_type)
    if field is None:
        raise unsupported(config.model_type, "not a family whose attention dropout cdsynth knows")
    reason = residual_refusal(config)
    if reason:
        raise unsupported(config.model_type, reason)
    return field


def dropout_overrides(config: PretrainedConfig, field: str, dropout: float) -> dict[str, Any]:
    """`field` at `dropout` and every other numeric dropout-like field (…dropout, …pdrop, layerdrop) at 0."""
    others = {
        name: 0.0
        for name, value in config.to_dict().items()
        if "drop" in name and isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    return others | {field: dropout}


@torch.inference_mode()
def changes_in_train_mode(model: PreTrainedModel) -> bool:
    """Whether train mode moves the logits of a fixed probe sequence (seeded; the global RNG is restored)."""
    ids = (torch.arange(1, 17, device=model.device)[None] * 7) % model.config.vocab_size
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
        trained = model.train()(ids).logits.float()
        evaluated = model.eval()(ids).logits.float()
    model.train()
    tolerance = 1e-5 if model.dtype == torch.float32 else 1e-2
    return not torch.allclose(trained, evaluated, rtol=tolerance, atol=tolerance)


def load_dropout_amateur(
    path: str | os.PathLike, device: torch.device, dtype: str, dropout: float
) -> PreTrainedModel:
    """GOOD at `path` in train mode with attention dropout `dropout` and no other dropout.

    Probed on sdpa attention, then eager (a family's sdpa path may skip the dropout its eager path
    applies); a family whose attention drops nothing either way is refused rather than run as an amateur
    identical to the expert, which would make CD contrast nothing.
    """
    config = load_config(path)
    field = attention_dropout_field(config)
    overrides = dropout_overrides(config, field, dropout)
    for implementation in ("sdpa", "eager"):
        require_attention_only(path, device, dtype, overrides | {field: 0.0}, implementation)
        amateur = load_causal_lm(path, device, dtype, overrides, implementation).train()
        if changes_in_train_mode(amateur):
            return amateur
        if amateur.config._attn_implementation == "eager":
            break
        del amateur
    raise unsupported(config.model_type, f"`{field}` changes nothing in train mode")


def require_attention_only(
    path: str | os.PathLike, device: torch.device, dtype: str, overrides: dict[str, Any], implementation: str
) -> None:
    """Refuse a family whose train mode still moves the logits with all its dropout fields at 0: something
    else (noise, a dropout under an unexpected name) would be active beside attention dropout."""
    control = load_causal_lm(path, device, dtype, overrides, implementation)
    if changes_in_train_mode(control):
        raise unsupported(control.config.model_type, "train mode changes more than attention dropout")
