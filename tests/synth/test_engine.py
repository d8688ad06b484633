"""The generation engine on a real trained pair: caches, padding, seeds, dropout amateur, bad pairs."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters
from transformers import AutoTokenizer

from cdsynth.checkpoints import load_causal_lm
from cdsynth.data.tokenizer import train_tokenizer
from cdsynth.errors import DataError
from cdsynth.spec.training import Architecture
from cdsynth.synth import engine as engine_module
from cdsynth.synth.dropout import load_dropout_amateur
from cdsynth.synth.engine import LivePrefixCache, TorchEngine, batch_shape, forward_last, generate, left_pad
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


def history_masks(seqs, prompts, scoring, vocab):
    """The repetition controls' (seen, banned) from the whole sequences, in plain Python."""
    seen = torch.zeros((len(seqs), vocab), dtype=torch.bool)
    banned = torch.zeros((len(seqs), vocab), dtype=torch.bool)
    n = scoring.no_repeat_ngram
    for row, (seq, prompt) in enumerate(zip(seqs, prompts)):
        seen[row, seq] = True
        generated = seq[len(prompt) :]
        if n is None or len(generated) < n - 1:
            continue
        tail = generated[len(generated) - (n - 1) :]
        for start in range(len(generated) - n + 1):
            if generated[start : start + n - 1] == tail:
                banned[row, generated[start + n - 1]] = True
    return (seen if scoring.repetition_penalty != 1 else None), (banned if n is not None else None)


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
        controls = history_masks(seqs, prompts, scoring, logits[0].shape[-1])
        token = next_tokens(logits[0], logits[1], scoring, None, *controls)
        for seq, t in zip(seqs, token.tolist()):
            seq.append(t)
    return [seq[len(p) :] for seq, p in zip(seqs, prompts)]


CONTROLS = {"min_p": 0.05, "repetition_penalty": 1.3, "no_repeat_ngram": 3}


@pytest.mark.parametrize("controls", [{}, CONTROLS], ids=["paper", "controls"])
@pytest.mark.parametrize("method", ["ancestral", "vhead", "cd"])
def test_cached_greedy_equals_full_recomputation(pair, prompts, method, controls):
    """Also with the repetition controls, whose history the engine keeps on the device."""
    decoder, _ = pair
    scoring = Scoring(method=method, top_k=50 if method == "cd" else None, **controls)
    cached = generate(decoder, prompts, scoring, new_tokens=12, generator=None).tolist()
    assert cached == greedy_without_cache(decoder, prompts, scoring, 12)


def repeated_ngrams(ids, n):
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) - len(set(grams))


def test_no_ngram_repeats_in_what_the_engine_generates(pair, prompts):
    decoder, _ = pair
    plain = generate(decoder, prompts, Scoring(method="cd"), 60, generator=None).tolist()
    controlled = generate(decoder, prompts, Scoring(method="cd", no_repeat_ngram=3), 60, generator=None)
    assert sum(repeated_ngrams(ids, 3) for ids in plain) > 0, "greedy CD loops without the control"
    assert [repeated_ngrams(ids, 3) for ids in controlled.tolist()] == [0, 0, 0]


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


def shard_rows(prompts, copies):
    """A shard's rows: every prompt `copies` times (continuations), prompts of different lengths."""
    return [p for p in prompts for _ in range(copies)]


def continue_rows(engine, rows, seed=7, new_tokens=9):
    return engine.continue_prompts(rows, new_tokens, seed, progress=lambda tokens: None)


def test_batches_are_as_even_as_the_batch_size_allows():
    assert batch_shape(160, 64) == (3, 54)  # 2 filler rows, not 32
    assert batch_shape(128, 64) == (2, 64)
    assert batch_shape(5, 64) == (1, 5)


def test_draws_do_not_depend_on_the_batch_size_or_the_filler_rows(pair, prompts):
    """Each row draws its own uniforms from the shard's stream, so batching changes no sample."""
    decoder, _ = pair
    rows = shard_rows(prompts, 3)  # 9 rows: batches of 2 (4 x 2 + 1 + 1 filler), 4 (3 x 3) and 64 (1 x 9)
    engines = [TorchEngine(decoder, Scoring(method="cd"), batch_size=size) for size in (2, 4, 64)]
    outputs = [continue_rows(engine, rows) for engine in engines]
    assert outputs[0] == outputs[1] == outputs[2]
    assert len({tuple(ids) for ids in outputs[0]}) > 3  # the copies of a prompt drew different samples


def test_a_reused_engine_equals_fresh_engines(pair, prompts):
    decoder, _ = pair
    scoring = Scoring(method="cd", top_k=20)
    first, second = shard_rows(prompts, 2), shard_rows(prompts[::-1], 1)
    reused = TorchEngine(decoder, scoring, batch_size=4)
    again = [continue_rows(reused, first, seed=1), continue_rows(reused, second, seed=2)]
    fresh = [
        continue_rows(TorchEngine(decoder, scoring, batch_size=4), first, seed=1),
        continue_rows(TorchEngine(decoder, scoring, batch_size=4), second, seed=2),
    ]
    assert again == fresh


@pytest.mark.parametrize(
    "scoring",
    [
        Scoring(method="ancestral", top_k=50, top_p=0.9),
        Scoring(method="vhead", top_p=0.95),
        Scoring(method="cd", top_k=20, top_p=0.9),
        Scoring(method="cd", top_k=20, amateur_temperature=1.5, **CONTROLS),
    ],
    ids=["ancestral", "vhead", "cd", "cd-controls"],
)
def test_the_compiled_step_decodes_exactly_as_the_eager_one(pair, prompts, scoring, monkeypatch):
    """One compiled graph for the whole step (both models, scoring, draw): the same greedy and seeded ids
    as eager, over left-padded prompts, several batches, a short last batch filled with copies, and a live
    prefix that grows through several buckets without a graph per bucket."""
    decoder, _ = pair
    monkeypatch.setattr(engine_module, "LIVE_BUCKET", 4)  # 16 new tokens cross 4-5 buckets
    rows = shard_rows(prompts, 3)  # 9 rows in batches of 5: 2 x 5 with one filler row
    eager = TorchEngine(decoder, scoring, batch_size=5)
    torch._dynamo.reset()
    graphs = counters["stats"]["unique_graphs"]
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        compiled = TorchEngine(decoder, scoring, batch_size=5, compile=True)
        assert continue_rows(compiled, rows, new_tokens=16) == continue_rows(eager, rows, new_tokens=16)
        # the first bucket compiles static, the second symbolic; later buckets reuse that graph
        assert counters["stats"]["unique_graphs"] - graphs <= 2
        greedy = compiled.decode(rows[:5], 9, None, width=max(map(len, rows)))
    assert torch.equal(greedy, eager.decode(rows[:5], 9, None, width=max(map(len, rows))))


@torch.inference_mode()
def greedy_logits(model, prompts, new_tokens):
    """Greedy next-token logits (steps, rows, vocab) with the engine's live prefix of the cache."""
    ids, prompt_mask = left_pad(prompts, 0, CPU)
    width = ids.shape[1]
    mask = torch.cat([prompt_mask, torch.zeros((len(prompts), new_tokens), dtype=torch.long)], dim=1)
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    cache = LivePrefixCache(model.config, width + new_tokens + 1)
    cache.live = width
    steps = [forward_last(model, ids, cache.visible(mask), positions, cache, torch.arange(width))]
    positions = positions[:, -1:]
    for step in range(1, new_tokens):
        positions, where = positions + 1, torch.tensor([width - 1 + step])
        mask[:, where] = 1
        cache.live = engine_module.live_columns(width + step, width + new_tokens)
        token = steps[-1].argmax(-1)[:, None]
        steps.append(forward_last(model, token, cache.visible(mask), positions, cache, where))
    return torch.stack(steps)


def test_the_cache_hands_attention_only_its_live_columns(pair):
    config = pair[0].expert.config
    cache = LivePrefixCache(config, max_cache_len=50)
    heads, dim = config.num_key_value_heads, config.hidden_size // config.num_attention_heads
    cache.live = 7
    keys, values = cache.update(torch.ones(2, heads, 5, dim), torch.ones(2, heads, 5, dim), layer_idx=0)
    assert keys.shape[2] == values.shape[2] == 7 and cache.get_mask_sizes(1, 0) == (7, 0)
    assert keys[:, :, :5].eq(1).all() and keys[:, :, 5:].eq(0).all()  # written columns, then unwritten


def test_attention_over_the_live_prefix_matches_the_whole_cache(pair, prompts, monkeypatch):
    """Columns past the live prefix are masked anyway: reading them or not changes only the order of float
    sums, so the logits agree to rounding and the engine's greedy and seeded ids are the same."""
    decoder, _ = pair
    whole_cache = 10**6  # a bucket longer than the cache: attention reads every column, as before
    monkeypatch.setattr(engine_module, "LIVE_BUCKET", whole_cache)
    reference = greedy_logits(decoder.expert, prompts, 24)
    for bucket in (1, 4, 32):
        monkeypatch.setattr(engine_module, "LIVE_BUCKET", bucket)
        live = greedy_logits(decoder.expert, prompts, 24)
        torch.testing.assert_close(live, reference, rtol=1e-5, atol=1e-5)
    rows = shard_rows(prompts, 2)
    width = max(map(len, rows))
    for scoring in (Scoring(method="cd", top_k=20, top_p=0.9), Scoring(method="ancestral", top_p=0.9)):
        samples, greedy = [], []
        for bucket in (1, 4, whole_cache):
            monkeypatch.setattr(engine_module, "LIVE_BUCKET", bucket)
            engine = TorchEngine(decoder, scoring, batch_size=3)
            samples.append(continue_rows(engine, rows, new_tokens=24))
            greedy.append(engine.decode(rows, 24, None, width).tolist())
        assert samples[0] == samples[1] == samples[2]
        assert greedy[0] == greedy[1] == greedy[2]


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
    train_tokenizer(prepared["corpus"] / "train.arrow", tmp_path / "tok", recipe="authors", vocab_size=700)
    other = AutoTokenizer.from_pretrained(tmp_path / "tok")
    model = build_model(
        Architecture(layers=1, hidden=32, heads=2, intermediate=64, max_positions=64), other, 0
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
