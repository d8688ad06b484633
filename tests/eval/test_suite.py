"""Evaluation on a real trained micro model, checked against direct computations written here."""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from helpers import MICRO
from scipy.stats import spearmanr
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from cdsynth.checkpoints import load_causal_lm
from cdsynth.errors import DataError
from cdsynth.eval.items import load_items, load_reading
from cdsynth.eval.lm_scoring import encode_candidates, position_limit, shared_groups
from cdsynth.eval.metrics import aggregate, reading_table
from cdsynth.eval.suite import (
    candidate_task,
    choice_task,
    evaluate_checkpoint,
    evaluate_run,
    official_queries,
    reading_task,
    score_tasks,
    suite_tasks,
    surprisal_task,
)
from cdsynth.io import read_json
from cdsynth.report.statistics import TASK_LABELS
from cdsynth.report.summaries import summarize_experiment
from cdsynth.resumable import work_path
from cdsynth.spec.evaluation import Evaluation
from cdsynth.train.models import build_model

CPU = torch.device("cpu")
ITEMS = 4


@pytest.fixture(scope="module")
def eval_data(shared_data):
    return shared_data / "babylm2025_eval"


@pytest.fixture(scope="module")
def evaluated(micro_run, prepared, eval_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    settings = Evaluation(str(eval_data), max_items_per_task=ITEMS, batch_size=32, window=32)
    scores = evaluate_checkpoint(micro_run / "step40", prepared["corpus"] / "test.arrow", out, settings)
    return scores, pq.read_table(out / "predictions.parquet").to_pandas(), out


def completion_logprobs(model, tokenizer, pairs, batch_size: int) -> tuple[np.ndarray, int]:
    """(each completion's summed log-probability, sequences cut) through the suite's scoring."""

    def finish(sums, cut):
        return {"test": {"sums": np.concatenate(sums), "cut": cut}}, []

    task = candidate_task("test", tokenizer, pairs, [1] * len(pairs), finish)
    result = score_tasks(model, [task], batch_size)[0]["test"]
    return result["sums"], result["cut"]


def word_surprisals(model, tokenizer, pairs, batch_size: int, predictor: str) -> tuple[np.ndarray, int]:
    """(-log P(word | context) per pair, sequences cut) through the suite's scoring."""
    task = surprisal_task(tokenizer, pairs, predictor, lambda values, cut: ({"test": (values, cut)}, []))
    return score_tasks(model, [task], batch_size)[0]["test"]


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
    logprobs, cut = completion_logprobs(model, tokenizer, [(prefix, completion)], 8)
    assert logprobs[0] == pytest.approx(direct) and cut == 0


def test_scores_hold_both_wug_metrics_and_the_reading_predictor(evaluated):
    scores, _, _ = evaluated
    assert set(scores["scores"]) == {"perplexity", "eye_tracking", "reading"} | set(TASK_LABELS)
    assert scores["reading_predictor"] == "official"


def test_wug_accuracy_is_the_share_of_items_whose_first_variant_wins(evaluated):
    scores, predictions, _ = evaluated
    wug = predictions[predictions.task == "wug"]
    lp = np.stack(wug.logprobs.to_numpy())
    first_wins = lp[:, 0] >= lp[:, 1]  # a tie goes to the first variant
    assert len(wug) == ITEMS and (wug.correct.to_numpy() == first_wins).all()
    assert scores["scores"]["wug_accuracy"] == pytest.approx(100 * first_wins.mean())


def test_wug_spearman_is_the_correlation_of_the_saved_probabilities(evaluated):
    scores, predictions, _ = evaluated
    wug = predictions[predictions.task == "wug"]
    lp = np.stack(wug.logprobs.to_numpy())
    first = np.exp(lp[:, 0] - np.logaddexp(lp[:, 0], lp[:, 1]))
    assert wug.value.to_numpy() == pytest.approx(first)
    assert scores["scores"]["wug_spearman"] == pytest.approx(100 * spearmanr(first, wug.reference)[0])


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


@torch.inference_mode()
def official_p2(model, tokenizer, sentence: str, word: str) -> float:
    """P(word | sentence) as the official `get_p2` computes it: one model call per word piece."""

    def next_token(text: str, token: int) -> float:
        logits = model(input_ids=torch.tensor([tokenizer(text)["input_ids"]])).logits[0, -1]
        return torch.softmax(logits.double(), dim=-1)[token].item()

    target = tokenizer(word, add_special_tokens=False)["input_ids"]
    p = next_token(sentence, target[0])
    sentence = sentence + tokenizer.decode(target[0])
    for token in target[1:]:
        text = tokenizer.decode(token)
        p *= next_token(sentence, tokenizer(text, add_special_tokens=False)["input_ids"][0])
        sentence = sentence + text
    return p


HAND_MADE = [
    ("Yesterday the children", "watched"),
    ("She told him that he", "can't"),
    ("After school you are", "unbelievable"),
    ("The dog", "ran"),
    ("Finally Maria sat down with a", "cup"),
]


def pieces(tokenizer, word: str) -> list[int]:
    return tokenizer(word, add_special_tokens=False)["input_ids"]


def test_official_reading_predictor_glues_decoded_pieces_to_the_context(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    pairs = [(c, w) for c, w in HAND_MADE if len(pieces(tokenizer, w)) <= 3]
    split = [(c, w) for c, w in pairs if len(pieces(tokenizer, w)) > 1]
    assert split and len(split) < len(pairs), "the hand-made words must include split and whole words"
    surprisal, cut = word_surprisals(model, tokenizer, pairs, 4, "official")
    expected = [-math.log(official_p2(model, tokenizer, c, w)) for c, w in pairs]
    assert surprisal == pytest.approx(expected, rel=1e-5) and cut == 0
    context, word = split[0]
    queries = official_queries(tokenizer, context, word)
    first = pieces(tokenizer, word)[0]
    assert len(queries) == len(pieces(tokenizer, word)) and queries[0] == (context, first)
    assert queries[1][0] == context + tokenizer.decode(first) and queries[1][0][len(context)] != " "
    joint, _ = completion_logprobs(model, tokenizer, [(context, " " + word)], 4)
    assert -joint[0] != pytest.approx(surprisal[pairs.index(split[0])], rel=1e-3)


def test_official_reading_predictor_rescans_each_later_piece_as_a_word(model_and_tokenizer):
    """A later piece is looked up as its decoded text tokenized on its own, which may be another token."""
    _, tokenizer = model_and_tokenizer
    for context, word in HAND_MADE:
        later = pieces(tokenizer, word)[1:]
        scored = [token for _, token in official_queries(tokenizer, context, word)[1:]]
        assert scored == [pieces(tokenizer, tokenizer.decode(token))[0] for token in later]
    assert any(
        token != pieces(tokenizer, tokenizer.decode(token))[0]
        for _, word in HAND_MADE
        for token in pieces(tokenizer, word)[1:]
    ), "some later piece should read as another token on its own"


def test_joint_reading_predictor_scores_the_word_after_a_space(model_and_tokenizer, eval_data):
    model, tokenizer = model_and_tokenizer
    _, predictions = score_tasks(model, [reading_task(tokenizer, eval_data, "joint")], 64)
    rows = load_reading(eval_data)
    words, _ = completion_logprobs(model, tokenizer, [(r["item"], " " + r["word"]) for r in rows], 64)
    assert [p["value"] for p in predictions] == pytest.approx(-words)
    has_prev = [i for i, r in enumerate(rows) if r["prev_item"] is not None]
    prev, _ = completion_logprobs(
        model, tokenizer, [(rows[i]["prev_item"], " " + rows[i]["prev_word"]) for i in has_prev], 64
    )
    assert [predictions[i]["reference"] for i in has_prev] == pytest.approx(-prev)


def raw_reading(eval_data) -> list[dict[str, str]]:
    with open(eval_data / "reading" / "reading_data.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_previous_context_spelled_none_gives_no_previous_surprisal(evaluated, eval_data):
    _, predictions, _ = evaluated
    raw, rows = raw_reading(eval_data), load_reading(eval_data)
    spelled = [i for i, r in enumerate(raw) if r["prev_item"] == "None"]
    assert spelled and all(rows[i]["prev_item"] is None for i in spelled)
    reading = predictions[predictions.task == "reading"].set_index("item")
    assert reading.reference[spelled].isna().all()
    assert reading.reference.isna().sum() == sum(r["prev_item"] is None for r in rows)
    empty = [i for i, r in enumerate(raw) if r["item"] == ""]
    assert empty and all(rows[i]["item"] == "None" for i in empty)  # the pipeline's fillna("None")


def test_reading_rows_are_those_pandas_reads(eval_data):
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(eval_data / "reading" / "reading_data.csv", dtype={"item": str})
    frame["item"] = frame["item"].fillna("None")
    rows = load_reading(eval_data)
    assert len(rows) == len(frame)
    for column in frame.columns:
        ours = [r["" if column.startswith("Unnamed") else column] for r in rows]
        assert [value is None for value in ours] == frame[column].isna().tolist(), column
        present = frame[column].dropna().tolist()
        if pd.api.types.is_numeric_dtype(frame[column]):
            assert [float(value) for value in ours if value is not None] == pytest.approx(present, rel=1e-12)
        else:
            assert [value for value in ours if value is not None] == present, column
    table = reading_table(rows, np.zeros(len(rows)), np.zeros(len(rows)))
    for name in ("RTfirstfix", "self_paced_reading_time", "Subtlex_log10", "prev_length"):
        np.testing.assert_allclose(table[name], frame[name].to_numpy(float), rtol=1e-12)


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


def direct_completion(model, tokenizer, prefix: str, completion: str, keep: int | None = None) -> float:
    """The completion's summed log-probability from one model call on the (last `keep`) tokens."""
    ((ids, scored),) = encode_candidates(tokenizer, [(prefix, completion)])
    ids, scored = ids[-(keep or len(ids)) :], scored[-(keep or len(ids)) :]
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
    return sum(logprobs[i - 1, ids[i]].item() for i in range(1, len(ids)) if scored[i])


def test_entity_tracking_longer_than_the_positions_is_scored_whole(evaluated, model_and_tokenizer, eval_data):
    scores, _, _ = evaluated
    model, tokenizer = model_and_tokenizer
    limit = model.config.max_position_embeddings
    assert position_limit(model) is None  # rotary positions: any length
    pairs = [c for item in load_items(eval_data, "entity_tracking", ITEMS) for c in item.candidates]
    lengths = [len(ids) for ids, _ in encode_candidates(tokenizer, pairs)]
    longest = pairs[int(np.argmax(lengths))]
    assert max(lengths) > 2 * limit
    logprobs, cut = completion_logprobs(model, tokenizer, [longest], 8)
    assert logprobs[0] == pytest.approx(direct_completion(model, tokenizer, *longest), abs=1e-4)
    assert cut == 0 and scores["details"]["entity_tracking"]["truncated"] == 0
    for task in ("blimp", "blimp_supplement", "ewok", "wug_accuracy", "reading", "eye_tracking"):
        assert scores["details"][task]["truncated"] == 0


@pytest.fixture(scope="module")
def gpt2(model_and_tokenizer):
    """A tiny random GPT-2: learned absolute positions, 32 of them."""
    tokenizer = model_and_tokenizer[1]
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config).eval()


def test_a_model_with_learned_positions_sees_the_newest_tokens_and_the_cut_is_counted(
    gpt2, model_and_tokenizer, eval_data
):
    tokenizer = model_and_tokenizer[1]
    assert position_limit(gpt2) == 32
    items = load_items(eval_data, "entity_tracking", 1)
    pairs = [c for item in items for c in item.candidates]
    lengths = [len(ids) for ids, _ in encode_candidates(tokenizer, pairs)]
    results, _ = score_tasks(gpt2, [choice_task(tokenizer, eval_data, "entity_tracking", 1)], 16)
    assert results["entity_tracking"]["truncated"] == sum(n > 32 for n in lengths) > 0
    longest = pairs[int(np.argmax(lengths))]
    logprobs, cut = completion_logprobs(gpt2, tokenizer, [longest], 8)
    assert logprobs[0] == pytest.approx(direct_completion(gpt2, tokenizer, *longest, keep=32), abs=1e-4)
    assert cut == 1


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
    model = build_model(MICRO, tokenizer, seed=0)
    model.save_pretrained(tmp_path / "random")
    tokenizer.save_pretrained(tmp_path / "random")
    settings = Evaluation(str(eval_data), max_items_per_task=15, batch_size=64, window=32)
    scores = evaluate_checkpoint(tmp_path / "random", prepared["corpus"] / "test.arrow", tmp_path, settings)
    assert 40 < scores["scores"]["blimp"] < 60
    assert scores["scores"]["perplexity"] > len(tokenizer) * 0.5


def test_a_missing_task_directory_is_named(micro_run, prepared, tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "blimp_filtered")):
        evaluate_checkpoint(
            micro_run / "step40",
            prepared["corpus"] / "test.arrow",
            tmp_path / "out",
            Evaluation(str(tmp_path)),
        )


def evaluate_micro_run(micro_run, prepared, eval_data, out, **settings) -> None:
    test = prepared["corpus"] / "test.arrow"
    settings = {"max_items_per_task": ITEMS, "batch_size": 32, "window": 32} | settings
    evaluate_run(micro_run, 1, test, out, Evaluation(str(eval_data), **settings), model_name="micro-seed3")


@pytest.fixture(scope="module")
def evaluated_run(micro_run, prepared, eval_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "seed3"
    evaluate_micro_run(micro_run, prepared, eval_data, out)
    return out


def test_a_run_is_evaluated_checkpoint_by_checkpoint(evaluated_run, evaluated, micro_run):
    assert sorted(p.name for p in evaluated_run.iterdir()) == [
        "checkpoints.json",
        "job.json",
        "step20",
        "step40",
        "submission",
    ]
    listed = read_json(evaluated_run / "checkpoints.json")
    assert [row["step"] for row in listed] == [20, 40] and listed[1] == read_json(
        micro_run / "step40/checkpoint.json"
    )
    assert read_json(evaluated_run / "step40/scores.json")["scores"] == evaluated[0]["scores"]
    assert read_json(evaluated_run / "job.json")["max_items_per_task"] == ITEMS, (
        "what the evaluation was made from"
    )
    assert not work_path(evaluated_run).exists()


def test_an_experiment_summary_has_both_wug_metrics(evaluated_run, eval_data, tmp_path):
    summary = summarize_experiment("micro", {3: str(evaluated_run)}, eval_data, tmp_path, samples=200)
    assert {result["selected"][3] for result in summary["tasks"].values()} <= {20, 40}
    assert set(summary["tasks"]) == set(TASK_LABELS)
    with np.load(tmp_path / "replicates.npz") as data:
        replicates = {task: data[task] for task in data.files}
    assert set(replicates) == set(TASK_LABELS) and all(len(r) == 200 for r in replicates.values())
    # WUG accuracy resamples the 4 items' hits: every replicate is a multiple of 25%.
    assert set(np.unique(replicates["wug_accuracy"])) <= {0.0, 25.0, 50.0, 75.0, 100.0}
    assert np.all(np.abs(replicates["wug_spearman"]) <= 100)


def test_a_missing_checkpoint_is_named_before_any_evaluation(micro_run, prepared, eval_data, tmp_path):
    test = prepared["corpus"] / "test.arrow"
    run = Path(shutil.copytree(micro_run, tmp_path / "run"))
    shutil.rmtree(run / "step20")
    with pytest.raises(DataError, match="no step20. Train the run again"):
        evaluate_run(run, 1, test, tmp_path / "seed3", Evaluation(str(eval_data)), model_name="micro-seed3")
    assert not work_path(tmp_path / "seed3").exists()


KILLED_EVALUATION = """
import sys
from cdsynth.eval.suite import evaluate_run
from cdsynth.spec.evaluation import Evaluation
run, test, data, out = sys.argv[1:]
evaluate_run(
    run, 1, test, out, Evaluation(data, max_items_per_task=4, batch_size=32, window=32), model_name="m"
)
"""


@pytest.mark.parametrize("changed", [{"max_items_per_task": ITEMS + 1}, {"reading_predictor": "joint"}])
def test_a_killed_evaluation_redone_with_other_settings_starts_over(
    micro_run, prepared, eval_data, tmp_path, capfd, changed
):
    out = tmp_path / "seed3"
    paths = [micro_run, prepared["corpus"] / "test.arrow", eval_data, out]
    command = [sys.executable, "-c", KILLED_EVALUATION, *map(str, paths)]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    finished = work_path(out) / "step20/scores.json"
    deadline = time.monotonic() + 120
    while not finished.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert finished.exists() and not out.exists(), "the evaluation must be killed midway"
    evaluate_micro_run(micro_run, prepared, eval_data, out, **changed)
    assert "discarding" in capfd.readouterr().err
    expected = {"max_items_per_task": ITEMS, "reading_predictor": "official"} | changed
    for step in ("step20", "step40"):
        scores = read_json(out / step / "scores.json")
        used = {
            "max_items_per_task": scores["max_items_per_task"],
            "reading_predictor": scores["reading_predictor"],
        }
        assert used == expected


@pytest.mark.slow
def test_shared_prefixes_change_no_score_on_the_full_data(micro_run, prepared, eval_data):
    """Every task on the full evaluation data: shared prefixes against every sequence scored whole.

    A winner may differ only where the candidates tie to within float rounding (this barely trained
    model has a few such items); a task's score then moves by those items alone.
    """
    model, tokenizer = (
        load_causal_lm(micro_run / "step40", CPU),
        AutoTokenizer.from_pretrained(micro_run / "step40"),
    )
    settings = Evaluation(str(eval_data), batch_size=64)
    tasks = suite_tasks(tokenizer, prepared["corpus"] / "test.arrow", settings, window=32)
    shared = [task for task in tasks if shared_groups(task.sequences, task.groups)]
    assert {task.name for task in shared} >= {"entity_tracking", "ewok"}
    results, rows = score_tasks(model, tasks, 64)
    whole_results, whole_rows = score_tasks(model, [replace(task, groups=[]) for task in tasks], 64)
    assert len(rows) == len(whole_rows) > 50_000
    flipped: dict[str, int] = defaultdict(int)
    for row, whole in zip(rows, whole_rows, strict=True):
        assert (row["task"], row["item"]) == (whole["task"], whole["item"])
        if "logprobs" in row:
            np.testing.assert_allclose(row["logprobs"], whole["logprobs"], rtol=1e-5, atol=1e-4)
            if row["correct"] != whole["correct"]:
                assert abs(row["logprobs"][0] - max(row["logprobs"][1:])) < 1e-4, (row, whole)
                flipped[row["task"]] += 1
        if row.get("value") is not None:
            assert row["value"] == pytest.approx(whole["value"], rel=1e-5, abs=1e-6)
    assert sum(flipped.values()) <= 3, "winners may differ only in the rare near-exact tie"
    smallest = Counter()  # the fewest items of a subtask, per task: one flip moves its score the most
    for (task, _), count in Counter((row["task"], row["subtask"]) for row in rows).items():
        smallest[task] = min(smallest[task] or count, count)
    for name, result in results.items():
        task = name.removesuffix("_accuracy")
        moved = 100 * flipped[task] / smallest[task] if task in flipped else 0.0
        assert result["score"] == pytest.approx(whole_results[name]["score"], rel=1e-5, abs=moved), name
