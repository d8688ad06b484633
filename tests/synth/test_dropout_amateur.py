"""The dropout amateur on tiny random models of several families: attention dropout P, nothing else."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import transformers
from packaging.version import Version
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import (
    AutoModelForCausalLM,
    BloomConfig,
    CodeGenConfig,
    FalconConfig,
    GPT2Config,
    LlamaConfig,
    LlamaForCausalLM,
    MixtralConfig,
    OPTConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

from cdsynth.checkpoints import cache_keyword, load_causal_lm, load_config
from cdsynth.errors import ConfigError
from cdsynth.synth import dropout
from cdsynth.synth.dropout import attention_dropout_field, dropout_overrides, load_dropout_amateur
from cdsynth.synth.engine import generate, left_pad
from cdsynth.synth.pair import load_decoder
from cdsynth.synth.scoring import Scoring

CPU = torch.device("cpu")
VOCAB = 100
SIZES = {"vocab_size": VOCAB, "initializer_range": 0.2}
# Each with a non-attention dropout switched on, so leaving it on would show.
SUPPORTED = {
    "llama": LlamaConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **SIZES
    ),
    "gpt2": GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, resid_pdrop=0.1, **SIZES),
    "opt": OPTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        ffn_dim=64,
        word_embed_proj_dim=32,
        dropout=0.1,
        **SIZES,
    ),
    # ALiBi with parallel attention, whose attention drops probabilities in every transformers 5.x.
    "falcon": FalconConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, alibi=True, hidden_dropout=0.1, **SIZES
    ),
    "bloom": BloomConfig(hidden_size=32, n_layer=2, n_head=2, hidden_dropout=0.1, **SIZES),
}


def save_tiny(config: PretrainedConfig, directory: Path) -> Path:
    """A randomly initialised model with a real word-level tokenizer beside it (ids 0-3 are specials)."""
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    words = {f"w{i}": i for i in range(VOCAB)}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(words, unk_token="w0")),
        unk_token="w0",
        bos_token="w1",
        eos_token="w2",
        pad_token="w3",
    )
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {family: save_tiny(config, root / family) for family, config in SUPPORTED.items()}


def logits(model, seed: int = 0) -> torch.Tensor:
    ids = torch.tensor([[1, 17, 42, 5, 99, 23, 8, 64, 31, 12]])
    torch.manual_seed(seed)
    with torch.inference_mode():
        return model(ids).logits


@pytest.mark.parametrize("family", SUPPORTED)
def test_the_amateur_drops_attention_probabilities_only(models, family):
    amateur = load_dropout_amateur(models[family], CPU, "float32", 0.3)
    field = attention_dropout_field(amateur.config)
    others = {k: v for k, v in amateur.config.to_dict().items() if "drop" in k and k != field}
    assert amateur.training and getattr(amateur.config, field) == 0.3
    assert all(value == 0.0 for value in others.values())
    assert not torch.allclose(logits(amateur), logits(load_causal_lm(models[family], CPU)))


@pytest.mark.parametrize("family", SUPPORTED)
def test_with_p_zero_train_mode_is_eval_mode(models, family):
    """What the amateur adds over the expert is attention dropout: without it, train mode changes nothing."""
    config = load_config(models[family])
    overrides = dropout_overrides(config, attention_dropout_field(config), 0.0)
    trained = load_causal_lm(models[family], CPU, config_overrides=overrides).train()
    assert torch.allclose(logits(trained), logits(load_causal_lm(models[family], CPU)), atol=1e-6)


def test_the_defaults_would_also_drop_the_residual_stream(models):
    """Why the other fields are zeroed: OPT's train mode with only attention dropout at 0 still differs."""
    trained = load_causal_lm(models["opt"], CPU, config_overrides={"attention_dropout": 0.0}).train()
    assert not torch.allclose(logits(trained), logits(load_causal_lm(models["opt"], CPU)))


def tiny_falcon(**layout) -> FalconConfig:
    return FalconConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, **layout, **SIZES)


def attention_drops_on_installed_transformers(config: PretrainedConfig) -> bool:
    """Ground truth, without cdsynth's loader: does train mode with attention dropout alone (every other
    dropout field at 0) move the logits, on the sdpa or the eager path?"""
    overrides = dropout_overrides(config, "attention_dropout", 0.5)
    for implementation in ("sdpa", "eager"):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(
            type(config)(**(config.to_dict() | overrides)), attn_implementation=implementation
        )
        if not torch.allclose(logits(model.train()), logits(model.eval())):
            return True
    return False


def test_rotary_falcon_is_an_amateur_exactly_where_its_attention_drops(tmp_path):
    """No rule: the probe decides (rotary Falcon's attention drops nothing in transformers 5.19 and drops
    probabilities in 5.25), and it agrees with what the installed version does."""
    rotary = tiny_falcon()
    save_tiny(rotary, tmp_path / "falcon")
    if attention_drops_on_installed_transformers(rotary):
        amateur = load_dropout_amateur(tmp_path / "falcon", CPU, "float32", 0.3)
        assert not torch.allclose(logits(amateur), logits(load_causal_lm(tmp_path / "falcon", CPU)))
    else:
        with pytest.raises(ConfigError, match="falcon.*changes nothing in train mode"):
            load_dropout_amateur(tmp_path / "falcon", CPU, "float32", 0.3)


def test_sequential_falcon_drops_its_residual_stream_with_the_attention_field(monkeypatch):
    """The premise of the one family rule, checked on the installed transformers: a sequential ALiBi
    Falcon block adds its attention output to the residual through dropout at `attention_dropout`,
    which the probe cannot tell from attention-probability dropout."""
    from transformers.models.falcon import modeling_falcon

    probabilities = []
    original = modeling_falcon.dropout_add

    def recording(x, residual, prob, training):
        probabilities.append((prob, training))
        return original(x, residual, prob, training)

    monkeypatch.setattr(modeling_falcon, "dropout_add", recording)
    model = AutoModelForCausalLM.from_config(
        tiny_falcon(alibi=True, parallel_attn=False, attention_dropout=0.3, hidden_dropout=0.0)
    )
    logits(model.train())
    assert (0.3, True) in probabilities


def test_sequential_falcon_is_refused(tmp_path):
    save_tiny(tiny_falcon(alibi=True, parallel_attn=False), tmp_path / "falcon")
    with pytest.raises(ConfigError, match="not supported for falcon.*residual.*--amateur DIR"):
        load_dropout_amateur(tmp_path / "falcon", CPU, "float32", 0.3)


def test_the_probe_refuses_a_field_that_drops_nothing(models, monkeypatch):
    """GPT-2's `summary_first_dropout` belongs to a head the causal LM does not have: named as the
    attention field, it changes nothing in train mode, and the probe says so."""
    monkeypatch.setitem(dropout.ATTENTION_DROPOUT, "gpt2", "summary_first_dropout")
    with pytest.raises(ConfigError, match="gpt2.*`summary_first_dropout` changes nothing in train mode"):
        load_dropout_amateur(models["gpt2"], CPU, "float32", 0.3)


def test_train_mode_noise_outside_attention_is_refused(tmp_path):
    """Mixtral's router jitter is noise that train mode adds and no dropout field turns off."""
    config = MixtralConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        router_jitter_noise=0.1,
        **SIZES,
    )
    save_tiny(config, tmp_path / "mixtral")
    with pytest.raises(ConfigError, match="mixtral.*more than attention dropout"):
        load_dropout_amateur(tmp_path / "mixtral", CPU, "float32", 0.3)


def test_an_unknown_family_is_refused_before_its_weights_are_read(tmp_path):
    CodeGenConfig(n_embd=32, n_layer=2, n_head=2, **SIZES).save_pretrained(tmp_path / "codegen")
    with pytest.raises(ConfigError, match="not supported for codegen.*--amateur DIR"):
        load_dropout_amateur(tmp_path / "codegen", CPU, "float32", 0.3)


@torch.inference_mode()
def greedy_without_cache(model, prompts, pad_id, new_tokens):
    """The model reruns on the whole left-padded sequence at every step, with no cache at all."""
    seqs = [list(p) for p in prompts]
    for _ in range(new_tokens):
        ids, mask = left_pad(seqs, pad_id, CPU)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        for seq, token in zip(seqs, out.logits[:, -1].argmax(-1).tolist()):
            seq.append(token)
    return [seq[len(p) :] for seq, p in zip(seqs, prompts)]


@pytest.mark.parametrize("family", SUPPORTED)
def test_the_engine_decodes_each_family_as_a_cacheless_loop_would(models, family):
    """The cache goes in under the installed transformers' own name: same tokens, no deprecation warning."""
    decoder, _ = load_decoder(models[family], None, CPU)
    prompts = [[1, 17, 42, 5, 99], [1, 23, 8]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached = generate(decoder, prompts, Scoring(method="ancestral"), 6, generator=None).tolist()
    assert not [w for w in caught if "past_key_values" in str(w.message)]
    assert cached == greedy_without_cache(decoder.expert, prompts, decoder.pad_id, 6)


@pytest.mark.parametrize("family", ["llama", "bloom"])
def test_load_decoder_builds_the_dropout_amateur(models, family):
    decoder, tokenizer = load_decoder(models[family], None, CPU, amateur_dropout=0.3)
    assert decoder.amateur.training and not decoder.expert.training
    assert decoder.amateur.config.attention_dropout == 0.3
    sampled = generate(decoder, [[tokenizer.bos_token_id, 17, 42]], Scoring(method="cd"), 5, None)
    assert sampled.shape == (1, 5)


def test_the_cache_keyword_is_the_old_one_where_forward_knows_only_that():
    """transformers 5.24 renamed `past_key_values` to `cache`; 5.19 (the lowest allowed) has only the old."""

    class OldForward:
        def forward(self, input_ids, past_key_values=None, use_cache=None): ...

    renamed = Version(transformers.__version__) >= Version("5.24")
    assert cache_keyword(OldForward) == "past_key_values"
    assert cache_keyword(LlamaForCausalLM) == ("cache" if renamed else "past_key_values")
