"""The generation engine on a real trained pair: caches, padding, seeds, dropout amateur, bad pairs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from cdsynth.checkpoints import load_causal_lm
from cdsynth.data.tokenizer import train_tokenizer
from cdsynth.errors import DataError
from cdsynth.synth.dropout import load_dropout_amateur
from cdsynth.synth.engine import generate, left_pad
from cdsynth.synth.pair import load_decoder
from cdsynth.synth.scoring import Scoring, next_tokens
from cdsynth.train.models import build_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pair(micro_run):
    decoder, tokenizer = load_decoder(micro_run / "step40", micro_run / "step20", CPU)
    return decoder, tokenizer


@pytest.fixture(scope="module")
def prompts(pair):
    _, tokenizer = pair
    texts = ["Once upon a time there was a little girl", "The king said", "It was a cold and dark night, and"]
    return [[tokenizer.bos_token_id, *tokenizer(t, add_special_tokens=False)["input_ids"]] for t in texts]


@torch.inference_mode()
def greedy_without_cache(decoder, prompts, scoring, new_tokens):
    """Every step recomputes both models on the whole (left-padded) sequence: the slow, obvious way."""
    seqs = [list(p) for p in prompts]
    for _ in range(new_tokens):
        ids, mask = left_pad(seqs, decoder.pad_id, CPU)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = [
            m(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
            for m in (decoder.expert, decoder.amateur)
        ]
        token = next_tokens(logits[0], logits[1], scoring, None)
        for seq, t in zip(seqs, token.tolist()):
            seq.append(t)
    return [seq[len(p) :] for seq, p in zip(seqs, prompts)]


@pytest.mark.parametrize("method", ["ancestral", "vhead", "cd"])
def test_cached_greedy_equals_full_recomputation(pair, prompts, method):
    decoder, _ = pair
    scoring = Scoring(method=method, top_k=50 if method == "cd" else None)
    cached = generate(decoder, prompts, scoring, new_tokens=12, generator=None).tolist()
    assert cached == greedy_without_cache(decoder, prompts, scoring, 12)


def test_left_padding_does_not_change_a_row(pair, prompts):
    decoder, _ = pair
    scoring = Scoring(method="cd")
    batch = generate(decoder, prompts, scoring, new_tokens=10, generator=None).tolist()
    alone = [generate(decoder, [p], scoring, new_tokens=10, generator=None).tolist()[0] for p in prompts]
    assert batch == alone


def test_same_seed_same_ids_other_seed_other_ids(pair, prompts):
    decoder, _ = pair
    scoring = Scoring(method="cd")

    def sample(seed):
        return generate(decoder, prompts, scoring, 20, torch.Generator().manual_seed(seed))

    assert torch.equal(sample(5), sample(5))
    assert not torch.equal(sample(5), sample(6))


def test_dropout_amateur_is_a_noisier_copy_of_good(micro_run, prompts):
    good = load_causal_lm(micro_run / "step40", CPU)
    noisy = load_dropout_amateur(micro_run / "step40", CPU, "float32", 0.5)
    assert noisy.training and not good.training
    ids = torch.tensor([prompts[0]])
    with torch.inference_mode():
        torch.manual_seed(0)
        assert not torch.allclose(good(ids).logits, noisy(ids).logits)
        assert torch.equal(good(ids).logits, load_causal_lm(micro_run / "step40", CPU)(ids).logits)


def test_an_amateur_with_another_tokenizer_is_refused(micro_run, prepared, tmp_path):
    train_tokenizer(prepared["corpus"] / "train.arrow", tmp_path / "tok", vocab_size=700)
    other = AutoTokenizer.from_pretrained(tmp_path / "tok")
    model = build_model(
        {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_positions": 64}, other, 0
    )
    model.save_pretrained(tmp_path / "other")
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(DataError, match="different tokenizers"):
        load_decoder(micro_run / "step40", tmp_path / "other", CPU)


def test_a_missing_checkpoint_is_named(micro_run):
    with pytest.raises(DataError, match="step999"):
        load_decoder(micro_run / "step40", micro_run / "step999", CPU)


def test_the_generation_dtype_is_the_engines(micro_run, prompts):
    """float32 (the authors') by default; bfloat16 on request, for both models, and it still generates."""
    default, _ = load_decoder(micro_run / "step40", micro_run / "step20", CPU)
    half, _ = load_decoder(micro_run / "step40", micro_run / "step20", CPU, dtype="bfloat16")
    assert {default.expert.dtype, default.amateur.dtype} == {torch.float32}
    assert {half.expert.dtype, half.amateur.dtype} == {torch.bfloat16}
    assert generate(half, prompts, Scoring(method="cd"), 5, torch.Generator().manual_seed(0)).shape == (3, 5)
