"""Loading checkpoints: config overrides, the eager fallback, and errors that name the broken file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, BloomConfig, LlamaConfig, PretrainedConfig

from cdsynth.checkpoints import load_causal_lm
from cdsynth.errors import DataError

CPU = torch.device("cpu")
LLAMA = LlamaConfig(
    vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
)


def save_tiny(config: PretrainedConfig, directory: Path) -> Path:
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return directory


def test_a_model_loads_in_eval_mode_on_sdpa(tmp_path):
    model = load_causal_lm(save_tiny(LLAMA, tmp_path / "llama"), CPU)
    assert not model.training and model.config._attn_implementation == "sdpa"
    assert model.dtype == torch.float32


def test_config_overrides_reach_the_model_and_unknown_ones_are_refused(tmp_path):
    path = save_tiny(LLAMA, tmp_path / "llama")
    model = load_causal_lm(path, CPU, config_overrides={"attention_dropout": 0.2})
    assert model.config.attention_dropout == 0.2
    assert model.model.layers[0].self_attn.attention_dropout == 0.2
    with pytest.raises(ValueError, match="attn_pdrop"):
        load_causal_lm(path, CPU, config_overrides={"attn_pdrop": 0.2})


def test_a_family_without_sdpa_falls_back_to_eager(tmp_path, capsys):
    path = save_tiny(BloomConfig(vocab_size=100, hidden_size=32, n_layer=2, n_head=2), tmp_path / "bloom")
    model = load_causal_lm(path, CPU)
    assert model.config._attn_implementation == "eager"
    assert "bloom does not load with SDPA attention; using eager" in capsys.readouterr().err
    with torch.inference_mode():
        assert model(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 100)


def test_a_truncated_safetensors_file_is_named(tmp_path):
    path = save_tiny(LLAMA, tmp_path / "llama")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(DataError, match=f"{weights}: cannot load the weights.*copy the checkpoint again"):
        load_causal_lm(path, CPU)


def test_missing_weights_are_named(tmp_path):
    path = save_tiny(LLAMA, tmp_path / "llama")
    (path / "model.safetensors").unlink()
    with pytest.raises(DataError, match=rf"{path} \(no weights file\).*copy the checkpoint again"):
        load_causal_lm(path, CPU)


@pytest.mark.parametrize("text", ["{not json", '{"model_type": "no-such-family"}'])
def test_a_bad_config_is_named(tmp_path, text):
    path = save_tiny(LLAMA, tmp_path / "llama")
    (path / "config.json").write_text(text)
    with pytest.raises(DataError, match=f"(?s){path / 'config.json'}: not a readable model config.*copy"):
        load_causal_lm(path, CPU)


def test_a_directory_without_a_config_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a Hugging Face model directory"):
        load_causal_lm(tmp_path, CPU)
