"""The official BabyLM 2025 files written from a real evaluation of the micro run, read back and re-scored.

The structures checked here are those of babylm/evaluation-pipeline-2025: the sentence tasks' files as
`sentence_zero_shot/compute_results.py` (`rank_and_evaluate`, `rank_and_evaluate_wug`) builds them and
`sentence_zero_shot/run.py` (`save_predictions`) writes them; the reading files as `reading/run.py` writes
them; the collated file as `collate_preds.py` (`collate_full_eval_preds`, `get_fast_eval_metrics`) does.
The scores are recomputed from those files alone (plus the task data), not from our predictions table.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from cdsynth.errors import DataError
from cdsynth.eval.official import revision_names, unscored_tasks, write_submission
from cdsynth.eval.suite import evaluate_run
from cdsynth.io import read_json
from cdsynth.spec.evaluation import Evaluation

ITEMS = 4
MODEL = "micro-seed3"
ZERO_SHOT = Path("zero_shot/causal")
FILES = {
    "blimp": ZERO_SHOT / "blimp/blimp_filtered/predictions.json",
    "blimp_supplement": ZERO_SHOT / "blimp/supplement_filtered/predictions.json",
    "ewok": ZERO_SHOT / "ewok/ewok_filtered/predictions.json",
    "entity_tracking": ZERO_SHOT / "entity_tracking/entity_tracking/predictions.json",
    "wug_adj": ZERO_SHOT / "wug_adj/wug_adj_nominalization/predictions.json",
    "reading": ZERO_SHOT / "reading/predictions.json",
}
DATA = {
    "blimp": "blimp_filtered",
    "blimp_supplement": "supplement_filtered",
    "ewok": "ewok_filtered",
    "entity_tracking": "entity_tracking",
    "wug_adj": "wug_adj_nominalization",
}


@pytest.fixture(scope="module")
def eval_data(shared_data):
    return shared_data / "babylm2025_eval"


@pytest.fixture(scope="module")
def submitted(micro_run, prepared, eval_data, tmp_path_factory):
    """The micro run with BabyLM marks (step20: chck_1M, step40: chck_2M, the final model), evaluated."""
    run = tmp_path_factory.mktemp("runs") / "micro" / "seed3"
    shutil.copytree(micro_run, run)
    for step, mark in ((20, "chck_1M"), (40, "chck_2M")):
        info = run / f"step{step}/checkpoint.json"
        info.write_text(json.dumps(read_json(info) | {"mark": mark}))
    out = tmp_path_factory.mktemp("eval") / "seed3"
    settings = Evaluation(str(eval_data), max_items_per_task=ITEMS, batch_size=32, window=32)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        evaluate_run(run, 1, prepared["corpus"] / "test.arrow", out, settings, model_name=MODEL)
    return out, run, printed.getvalue()


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def data_rows(eval_data: Path, task: str) -> dict[str, list[dict]]:
    """The task's data rows per official UID, in file order (as the official `read_files` + `decode_*`)."""
    by_uid: dict[str, list[dict]] = defaultdict(list)
    for path in sorted((eval_data / DATA[task]).glob("*.jsonl")):
        for row in rows(path):
            if task == "blimp":
                uid = row["UID"]
            elif task == "ewok":
                uid = row["Domain"]
            elif task == "entity_tracking":
                uid = f"{path.stem}_{row['numops']}_ops"
            else:
                uid = path.stem
            by_uid[uid].append(row)
    return by_uid


def candidates(task: str, row: dict) -> list[str]:
    """The completions the official pipeline ranks (its `pred` is one of them), the correct one first."""
    if task in ("blimp", "blimp_supplement"):
        return [row["sentence_good"], row["sentence_bad"]]
    if task == "ewok":
        return [" " + row["Target1"], " " + row["Target2"]]
    if task == "entity_tracking":
        return row["options"]
    return row["sentences"].split("\t")


def hits(task: str, predictions: dict, eval_data: Path) -> dict[str, list[bool]]:
    """Per UID, whether each prediction is the correct completion (as `_calculate_target_results`)."""
    data = data_rows(eval_data, task)
    result = {}
    for uid, entry in predictions.items():
        result[uid] = []
        for pred in entry["predictions"]:
            row = data[uid][int(pred["id"].rsplit("_", 1)[1])]
            result[uid].append(pred["pred"].strip() == candidates(task, row)[0].strip())
    return result


def test_the_files_of_a_checkpoint_have_the_official_names_ids_and_fields(submitted, eval_data):
    out, _, _ = submitted
    official = out / "step40/official"
    written = sorted(str(p.relative_to(official)) for p in official.rglob("*") if p.is_file())
    expected = [str(path) for path in FILES.values()] + [str(ZERO_SHOT / "reading/prediction.jsonl")]
    assert written == sorted([*expected, "cdsynth_status.json"])
    for task in DATA:
        predictions = read_json(official / FILES[task])
        data = data_rows(eval_data, task)
        assert set(predictions) == set(data), f"{task}: one key per official UID"
        for uid, entry in predictions.items():
            assert list(entry) == ["predictions"]
            assert len(entry["predictions"]) == min(ITEMS, len(data[uid]))
            for pred in entry["predictions"]:
                assert set(pred) == ({"id", "pred", "prob"} if task == "wug_adj" else {"id", "pred"})
                match = re.fullmatch(re.escape(uid) + r"_(\d+)", pred["id"])
                assert match, pred["id"]
                assert pred["pred"] in candidates(task, data[uid][int(match[1])])
                if task == "wug_adj":
                    assert 0 <= pred["prob"] <= 1
    assert set(read_json(official / FILES["blimp"])) >= {"complex_NP_island", "anaphor_gender_agreement"}
    assert set(read_json(official / FILES["entity_tracking"])) >= {"regular_0_ops", "move_contents_5_ops"}

    reading = pd.read_csv(eval_data / "reading/reading_data.csv", dtype={"item": str})
    reading["item"] = reading["item"].fillna("None")  # as reading/run.py reads it
    preds = read_json(official / FILES["reading"])
    assert list(preds) == ["reading"] and list(preds["reading"]) == ["predictions"]
    preds = preds["reading"]["predictions"]
    assert [p["id"] for p in preds] == list(range(len(reading)))
    assert all(set(p) == {"id", "pred", "prev_pred"} and p["pred"] > 0 for p in preds)
    no_prev = reading["prev_item"].isna().to_numpy()
    assert [math.isnan(p["prev_pred"]) for p in preds] == list(no_prev)
    lines = rows(official / ZERO_SHOT / "reading/prediction.jsonl")
    assert [list(line) for line in lines[:1]] == [["Index", "Sentence", "Word", "Logprob", "Prev_Logprob"]]
    assert [(line["Sentence"], line["Word"]) for line in lines] == list(zip(reading["item"], reading["word"]))
    assert [line["Logprob"] for line in lines] == [p["pred"] for p in preds]


def r2(frame: pd.DataFrame, target: str, terms: list[str]) -> float:
    """R2 of OLS with intercept; a term "a:b" is the product of the two columns (as a statsmodels formula)."""
    design = np.column_stack(
        [np.ones(len(frame))] + [np.prod([frame[n] for n in term.split(":")], axis=0) for term in terms]
    )
    y = frame[target].to_numpy()
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return 1 - np.sum((y - design @ beta) ** 2) / np.sum((y - y.mean()) ** 2)


def gain(data: pd.DataFrame, target: str, base: list[str]) -> float:
    interactions = [f"{a}:{b}" for i, a in enumerate(base) for b in base[i + 1 :]]
    frame = data[[target, "pred", *base]].dropna()
    before, after = r2(frame, target, base + interactions), r2(frame, target, [*base, *interactions, "pred"])
    return (after - before) / (1 - before)


def reading_gains(preds: dict, eval_data: Path) -> dict[str, float]:
    """{"spr": ..., "rt": ...} from the reading predictions, as `_calculate_reading_results` defines them."""
    data = pd.read_csv(eval_data / "reading/reading_data.csv", dtype={"item": str})
    data["pred"] = [p["pred"] for p in preds["reading"]["predictions"]]
    data["prev_pred"] = [p["prev_pred"] for p in preds["reading"]["predictions"]]
    base = ["Subtlex_log10", "length", "context_length"]
    eye = [gain(data, dv, base) for dv in ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")]
    spr = gain(data, "self_paced_reading_time", [*base, "prev_length", "prev_pred"])
    return {"spr": spr, "rt": float(np.mean(eye))}


def fast_metrics(official: Path, eval_data: Path) -> dict[str, dict[str, float]]:
    """A revision's scores recomputed from its official files: fractions per UID, WUG's rho, reading."""
    result = {}
    for task in ("blimp", "blimp_supplement", "ewok", "entity_tracking"):
        task_hits = hits(task, read_json(official / FILES[task]), eval_data)
        result[task] = {uid: float(np.mean(h)) for uid, h in task_hits.items()}
    wug = read_json(official / FILES["wug_adj"])["wug_adj_nominalization"]["predictions"]
    ratios = [row["ratio"] for row in data_rows(eval_data, "wug_adj")["wug_adj_nominalization"]]
    used = [ratios[int(p["id"].rsplit("_", 1)[1])] for p in wug]
    result["wug_adj"] = {"wug_adj_nominalization": spearmanr([p["prob"] for p in wug], used)[0]}
    wug_hits = hits("wug_adj", {"wug_adj_nominalization": {"predictions": wug}}, eval_data)
    result["wug_accuracy"] = {"all": float(np.mean(wug_hits["wug_adj_nominalization"]))}
    result["reading"] = reading_gains(read_json(official / FILES["reading"]), eval_data)
    return result


@pytest.mark.parametrize("step", [20, 40])
def test_scores_recomputed_from_the_official_files_equal_scores_json(submitted, eval_data, step):
    out, _, _ = submitted
    scores = read_json(out / f"step{step}/scores.json")["scores"]
    metrics = fast_metrics(out / f"step{step}/official", eval_data)
    for task in ("blimp", "blimp_supplement", "ewok"):  # macro average over the UIDs
        assert 100 * np.mean(list(metrics[task].values())) == pytest.approx(scores[task], abs=1e-4)
    groups = defaultdict(list)  # Entity Tracking: per file x numops, then per file, then over the files
    for uid, acc in metrics["entity_tracking"].items():
        groups[re.sub(r"_\d+_ops$", "", uid)].append(acc)
    assert set(groups) == {"regular", "ambiref", "move_contents"}
    et = 100 * np.mean([np.mean(accs) for accs in groups.values()])
    assert et == pytest.approx(scores["entity_tracking"], abs=1e-4)
    assert 100 * metrics["wug_accuracy"]["all"] == pytest.approx(scores["wug_accuracy"], abs=1e-4)
    rho = metrics["wug_adj"]["wug_adj_nominalization"]
    assert 100 * rho == pytest.approx(scores["wug_spearman"], abs=1e-4)
    assert 100 * metrics["reading"]["rt"] == pytest.approx(scores["eye_tracking"], abs=1e-4)
    assert 100 * metrics["reading"]["spr"] == pytest.approx(scores["reading"], abs=1e-4)


def test_the_collated_file_has_the_collate_preds_structure(submitted, eval_data):
    out, _, printed = submitted
    model = out / "submission" / MODEL
    collated = read_json(model / "all_full_preds_and_fast_scores_causal.json")
    # collate_full_eval_preds: one key per task, the final model's (main's) predictions.json as is.
    scored = ["blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "reading"]
    assert set(collated) == {*scored, "fast_eval_results"}
    for task in scored:
        assert collated[task] == read_json(out / "step40/official" / FILES[task])
        assert collated[task] == read_json(model / "main" / FILES[task])
    # get_fast_eval_metrics: per task, one entry per chck_* revision in training order.
    fast = collated["fast_eval_results"]
    assert set(fast) == set(scored) and all(len(fast[task]) == 2 for task in scored)
    for entry, step in zip(range(2), (20, 40)):
        metrics = fast_metrics(out / f"step{step}/official", eval_data)
        metrics["entity_tracking"] = {
            uid: acc for uid, acc in metrics["entity_tracking"].items() if uid.startswith("regular_")
        }
        for task in scored:
            assert fast[task][entry] == pytest.approx(metrics[task], abs=1e-6), (task, step)
    for revision in ("chck_1M", "chck_2M", "main"):
        assert all((model / revision / path).is_file() for path in FILES.values())

    state = read_json(model / "cdsynth_status.json")
    assert state["revisions"] == {"chck_1M": 20, "chck_2M": 40, "main": 40}
    assert state["fast_eval_revisions"] == ["chck_1M", "chck_2M"]
    assert state["missing"] == ["wug_past", "comps", "aoa", "glue"]
    assert state["subsampled"] and state["max_items_per_task"] == ITEMS and not state["complete"]
    assert "missing (no data here, not scored): wug_past, comps, aoa, glue" in printed
    assert f"SUBSAMPLED: at most {ITEMS} items" in printed
    assert read_json(out / "step40/official/cdsynth_status.json")["missing"] == state["missing"]


def test_a_step_evaluated_before_the_official_files_gets_them(submitted, eval_data, tmp_path):
    out, run, _ = submitted
    eval_dir = tmp_path / "eval"
    shutil.copytree(out, eval_dir)
    shutil.rmtree(eval_dir / "step20/official")
    shutil.rmtree(eval_dir / "submission")
    with contextlib.redirect_stdout(io.StringIO()):
        write_submission(eval_dir, run, [20, 40], MODEL, eval_data, ITEMS)
    for path in FILES.values():
        rebuilt, first = eval_dir / "step20/official" / path, out / "step20/official" / path
        assert rebuilt.read_bytes() == first.read_bytes()
    collated = "submission/micro-seed3/all_full_preds_and_fast_scores_causal.json"
    assert read_json(eval_dir / collated) == read_json(out / collated)


def test_revision_names_follow_the_marks_and_the_last_step_is_main(tmp_path):
    for step, info in {10: {"mark": None}, 20: {"mark": "chck_1M"}, 30: {}, 40: {"mark": "chck_2M"}}.items():
        (tmp_path / f"step{step}").mkdir()
        (tmp_path / f"step{step}/checkpoint.json").write_text(json.dumps({"step": step} | info))
    names = revision_names(tmp_path, [10, 20, 30, 40])
    assert names == {"step10": 10, "chck_1M": 20, "step30": 30, "chck_2M": 40, "main": 40}
    (tmp_path / "step30/checkpoint.json").write_text(json.dumps({"mark": "chck_1M"}))
    with pytest.raises(DataError, match="steps 20 and 30 are both marked 'chck_1M'"):
        revision_names(tmp_path, [10, 20, 30, 40])


def test_an_unscored_task_whose_data_is_present_is_named_so(eval_data, tmp_path):
    for child in eval_data.iterdir():
        (tmp_path / child.name).symlink_to(child)
    (tmp_path / "wug_past_tense").mkdir()
    assert unscored_tasks(tmp_path) == (["comps", "aoa", "glue"], ["wug_past"])
    assert unscored_tasks(eval_data) == (["wug_past", "comps", "aoa", "glue"], [])
