"""Evaluation on a real trained micro model, checked against direct computations written here."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from helpers import MICRO_ARCH
from scipy.stats import spearmanr
from transformers import AutoTokenizer

from cdsynth.babylm import load_items
from cdsynth.errors import DataError
from cdsynth.evaluate import aggregate, evaluate_checkpoint, evaluate_run
from cdsynth.io import read_json, work_dir
from cdsynth.lm_scoring import completion_logprobs, encode_candidates
from cdsynth.models import build_model
from cdsynth.pair import load_causal_lm

CPU = torch.device("cpu")
ITEMS = 4


@pytest.fixture(scope="module")
def eval_data(shared_data):
    return shared_data / "babylm2025_eval"


@pytest.fixture(scope="module")
def evaluated(micro_run, prepared, eval_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    scores = evaluate_checkpoint(
        micro_run / "step40",
        eval_data,
        prepared["corpus"] / "test.arrow",
        out,
        max_items=ITEMS,
        batch_size=32,
        window=32,
    )
    return scores, pq.read_table(out / "predictions.parquet").to_pandas(), out


@pytest.fixture(scope="module")
def model_and_tokenizer(micro_run):
    return load_causal_lm(micro_run / "step40", CPU), AutoTokenizer.from_pretrained(micro_run / "step40")


@torch.inference_mode()
def sentence_logprob(model, tokenizer, text: str) -> float:
    """log P(text) token by token, BOS as the only context: the plain definition."""
    ids = tokenizer(text)["input_ids"]
    total = 0.0
    for i in range(1, len(ids)):
        logits = model(input_ids=torch.tensor([ids[:i]])).logits[0, -1]
        total += torch.log_softmax(logits.double(), dim=-1)[ids[i]].item()
    return total


def test_blimp_accuracy_equals_a_per_sentence_computation(evaluated, model_and_tokenizer, eval_data):
    scores, predictions, _ = evaluated
    model, tokenizer = model_and_tokenizer
    items = load_items(eval_data, "blimp", ITEMS)
    for item in items[::7]:  # every 7th item keeps the slow per-token loop short
        good, bad = (sentence_logprob(model, tokenizer, c) for _, c in item.candidates)
        row = predictions[
            (predictions.task == "blimp")
            & (predictions.subtask == item.subtask)
            & (predictions["item"] == item.index)
        ].iloc[0]
        assert row.logprobs == pytest.approx([good, bad], abs=1e-4)  # float32 model, summed in float64
        assert row.correct == (good > bad)
    blimp = predictions[predictions.task == "blimp"]
    assert len(blimp) == 67 * ITEMS
    per_uid = blimp.groupby("subtask").correct.mean() * 100
    assert scores["scores"]["blimp"] == pytest.approx(per_uid.mean())


def test_only_completion_tokens_are_scored(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prefix, completion = "Box 3 contains ", "the key."
    ((ids, scored),) = encode_candidates(tokenizer, [(prefix, completion)])
    offsets = tokenizer(prefix + completion, return_offsets_mapping=True)["offset_mapping"]
    first = next(i for i, (s, e) in enumerate(offsets) if e > len(prefix) and e > s)
    assert scored == [i >= first for i in range(len(ids))]
    assert offsets[first][0] < len(prefix), "the token '▁the' starts in the prefix (its space) yet counts"
    # A completion that starts inside a word: the token spanning the boundary counts too.
    ((ids2, scored2),) = encode_candidates(tokenizer, [("a noun: happin", "ess")])
    assert sum(scored2) >= 1 and not scored2[0]
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
    direct = sum(logprobs[i - 1, ids[i]].item() for i in range(first, len(ids)))
    assert completion_logprobs(model, tokenizer, [(prefix, completion)], 8)[0] == pytest.approx(direct)


def test_wug_is_the_spearman_of_the_saved_probabilities(evaluated):
    scores, predictions, _ = evaluated
    wug = predictions[predictions.task == "wug"]
    lp = np.stack(wug.logprobs.to_numpy())
    first = np.exp(lp[:, 0] - np.logaddexp(lp[:, 0], lp[:, 1]))
    assert wug.value.to_numpy() == pytest.approx(first)
    assert scores["scores"]["wug"] == pytest.approx(100 * spearmanr(first, wug.reference)[0])


def r2(y: np.ndarray, x: np.ndarray) -> float:
    """R2 via the normal equations with an explicit intercept column."""
    design = np.hstack([np.ones((len(y), 1)), x])
    beta = np.linalg.pinv(design.T @ design) @ design.T @ y
    return 1 - np.sum((y - design @ beta) ** 2) / np.sum((y - y.mean()) ** 2)


def test_reading_r2_gains_equal_a_direct_regression(evaluated, eval_data):
    import pandas as pd

    scores, predictions, _ = evaluated
    rows = pd.read_csv(eval_data / "reading" / "reading_data.csv")
    reading = predictions[predictions.task == "reading"].sort_values("item")
    data = rows.iloc[reading["item"].to_numpy()].assign(
        pred=reading.value.to_numpy(), prev_pred=reading.reference.to_numpy()
    )
    base = ["Subtlex_log10", "length", "context_length"]

    def gain(target, names):
        frame = data[[target, "pred", *names]].dropna()
        x = np.column_stack(
            [frame[n] for n in names]
            + [frame[a] * frame[b] for i, a in enumerate(names) for b in names[i + 1 :]]
        )
        r2_base = r2(frame[target].to_numpy(), x)
        r2_model = r2(frame[target].to_numpy(), np.column_stack([x, frame.pred]))
        return 100 * (r2_model - r2_base) / (1 - r2_base)

    eye = np.mean([gain(m, base) for m in ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")])
    assert scores["scores"]["eye_tracking"] == pytest.approx(eye, abs=1e-6)
    spillover = gain("self_paced_reading_time", [*base, "prev_length", "prev_pred"])
    assert scores["scores"]["reading"] == pytest.approx(spillover, abs=1e-6)


def test_entity_tracking_averages_file_by_numops_then_groups():
    per_subtask = {
        "regular_0_ops": 10.0,
        "regular_1_ops": 30.0,
        "ambiref_0_ops": 50.0,
        "move_contents_2_ops": 90.0,
    }
    assert aggregate("entity_tracking", per_subtask) == pytest.approx((20 + 50 + 90) / 3)


def test_entity_tracking_score_follows_its_subtasks(evaluated):
    scores, predictions, _ = evaluated
    details = scores["details"]["entity_tracking"]["subtasks"]
    assert len(details) == 18 and all(
        name.rsplit("_", 2)[0] in ("regular", "ambiref", "move_contents") for name in details
    )
    assert scores["scores"]["entity_tracking"] == pytest.approx(aggregate("entity_tracking", details))


@torch.inference_mode()
def test_perplexity_is_exp_of_the_mean_token_nll(evaluated, model_and_tokenizer, prepared):
    from cdsynth.io import read_arrow

    scores, predictions, _ = evaluated
    model, tokenizer = model_and_tokenizer
    ppl = predictions[predictions.task == "perplexity"]
    assert scores["scores"]["perplexity"] == pytest.approx(math.exp(ppl.value.sum() / ppl.tokens.sum()))
    texts = read_arrow(prepared["corpus"] / "test.arrow").column("text").to_pylist()
    index = int(ppl["item"].iloc[0])
    ids = [
        tokenizer.bos_token_id,
        *tokenizer(texts[index], add_special_tokens=False)["input_ids"],
        tokenizer.eos_token_id,
    ]
    nll, count = 0.0, 0
    for start in range(0, len(ids) - 1, 31):  # windows of 32 tokens sharing one token of context
        window = torch.tensor([ids[start : start + 32]])
        logprobs = torch.log_softmax(model(input_ids=window).logits[0, :-1].double(), dim=-1)
        nll -= logprobs.gather(-1, window[0, 1:, None]).sum().item()
        count += window.shape[1] - 1
    assert ppl.value.iloc[0] == pytest.approx(nll, rel=1e-6) and ppl.tokens.iloc[0] == count


def test_an_untrained_model_is_near_chance_on_blimp(prepared, eval_data, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(prepared["tokenizer"])
    model = build_model(MICRO_ARCH, tokenizer, seed=0)
    model.save_pretrained(tmp_path / "random")
    tokenizer.save_pretrained(tmp_path / "random")
    scores = evaluate_checkpoint(
        tmp_path / "random",
        eval_data,
        prepared["corpus"] / "test.arrow",
        tmp_path,
        max_items=15,
        batch_size=64,
        window=32,
    )
    assert 40 < scores["scores"]["blimp"] < 60
    assert scores["scores"]["perplexity"] > len(tokenizer) * 0.5


def test_a_missing_task_directory_is_named(micro_run, prepared, tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "blimp_filtered")):
        evaluate_checkpoint(
            micro_run / "step40", tmp_path, prepared["corpus"] / "test.arrow", tmp_path / "out"
        )


def evaluate_micro_run(micro_run, prepared, eval_data, out, max_items=ITEMS) -> None:
    test = prepared["corpus"] / "test.arrow"
    evaluate_run(micro_run, [20, 40], eval_data, test, out, max_items=max_items, batch_size=32, window=32)


def test_a_run_is_evaluated_checkpoint_by_checkpoint(micro_run, prepared, eval_data, evaluated, tmp_path):
    evaluate_micro_run(micro_run, prepared, eval_data, tmp_path / "seed3")
    assert sorted(p.name for p in (tmp_path / "seed3").iterdir()) == ["step20", "step40"]
    assert read_json(tmp_path / "seed3/step40/scores.json")["scores"] == evaluated[0]["scores"]
    assert not work_dir(tmp_path / "seed3").exists()


def test_a_missing_checkpoint_is_named_before_any_evaluation(micro_run, prepared, eval_data, tmp_path):
    test = prepared["corpus"] / "test.arrow"
    with pytest.raises(DataError, match="no step60. Train the run first"):
        evaluate_run(micro_run, [20, 60], eval_data, test, tmp_path / "seed3")
    assert not work_dir(tmp_path / "seed3").exists()


KILLED_EVALUATION = """
import sys
from cdsynth.evaluate import evaluate_run
run, test, data, out = sys.argv[1:]
evaluate_run(run, [20, 40], data, test, out, max_items=4, batch_size=32, window=32)
"""


def test_a_killed_evaluation_redone_with_other_settings_starts_over(
    micro_run, prepared, eval_data, tmp_path, capfd
):
    out = tmp_path / "seed3"
    paths = [micro_run, prepared["corpus"] / "test.arrow", eval_data, out]
    command = [sys.executable, "-c", KILLED_EVALUATION, *map(str, paths)]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    finished = work_dir(out) / "step20/scores.json"
    deadline = time.monotonic() + 120
    while not finished.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert finished.exists() and not out.exists(), "the evaluation must be killed midway"
    evaluate_micro_run(micro_run, prepared, eval_data, out, max_items=ITEMS + 1)
    assert "discarding" in capfd.readouterr().out
    for step in ("step20", "step40"):
        assert read_json(out / step / "scores.json")["max_items_per_task"] == ITEMS + 1
