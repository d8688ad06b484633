"""Our predictions as the files of the official BabyLM 2025 pipeline (babylm/evaluation-pipeline-2025).

Per checkpoint (`write_checkpoint_files`, called by `evaluate_checkpoint`): what the official zero-shot
scripts write with `--save_predictions` under `results/<model>/<revision>/`, for the tasks cdsynth scores:

    zero_shot/causal/blimp/blimp_filtered/predictions.json
    zero_shot/causal/blimp/supplement_filtered/predictions.json
    zero_shot/causal/ewok/ewok_filtered/predictions.json
    zero_shot/causal/entity_tracking/entity_tracking/predictions.json
    zero_shot/causal/wug_adj/wug_adj_nominalization/predictions.json
    zero_shot/causal/reading/predictions.json     (Reading and Eye Tracking share it)
    zero_shot/causal/reading/prediction.jsonl

A sentence task's file maps each subtask (the official "UID": BLiMP's `UID` field, the supplement's file
name, EWoK's `Domain`, Entity Tracking's `<file>_<numops>_ops`, WUG's file name) to
`{"predictions": [{"id": "<UID>_<n>", "pred": <the winning completion>}, ...]}`, n counting the subtask's
rows in file order (the official ids, as its `rank_and_evaluate` numbers them). The completion is the
candidate text the official code scores (BLiMP: the sentence; EWoK: " " + Target; Entity Tracking: the
option); WUG's rows add `"prob"`, the softmax of the candidates' log-probabilities at the first one.
Reading is `{"reading": {"predictions": [{"id": <row>, "pred": surprisal, "prev_pred": ...}]}}`, NaN
where a row has no previous word (written as JSON `NaN`, as Python's `json` and the official code do).
With a subsample (`max_items_per_task`), a subtask keeps only its scored rows, each with its row's id.

Per run (`write_submission`, called by `evaluate_run`): the collated submission of `collate_preds.py`
(its `all_full_preds_and_fast_scores_causal.json`: the final model's predictions per task, plus
`fast_eval_results`, the per-revision scores of the `chck_*` checkpoints), beside the per-revision trees,
and a status file listing what is missing (tasks cdsynth does not score, a subsample).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cdsynth.errors import DataError
from cdsynth.eval.items import load_items, load_reading
from cdsynth.io import atomic_path, read_json, write_json

BACKEND = "causal"
ZERO_SHOT = Path("zero_shot") / BACKEND
COLLATED = f"all_full_preds_and_fast_scores_{BACKEND}.json"
STATUS = "cdsynth_status.json"

# Our sentence task -> (the official key in the collated file, its results folder, its data folder).
SENTENCE_TASKS = {
    "blimp": ("blimp", "blimp", "blimp_filtered"),
    "blimp_supplement": ("blimp_supplement", "blimp", "supplement_filtered"),
    "ewok": ("ewok", "ewok", "ewok_filtered"),
    "entity_tracking": ("entity_tracking", "entity_tracking", "entity_tracking"),
    "wug": ("wug_adj", "wug_adj", "wug_adj_nominalization"),
}
READING_DIR = ZERO_SHOT / "reading"

# The official tasks cdsynth does not score (collated key -> the full_eval data folder they read).
UNSCORED = {
    "wug_past": "wug_past_tense",
    "comps": "comps",
    "aoa": "cdi_childes",
    "glue": "glue_filtered",
}


def sentence_file(task: str) -> Path:
    """Where a sentence task's predictions.json lies under a revision's folder."""
    _, folder, dataset = SENTENCE_TASKS[task]
    return ZERO_SHOT / folder / dataset / "predictions.json"


def softmax_first(logprobs: np.ndarray) -> float:
    return float(np.exp(logprobs[0] - np.logaddexp.reduce(logprobs)))


def sentence_predictions(task: str, rows, data_dir: str | os.PathLike) -> dict[str, dict[str, list]]:
    """A sentence task's official predictions.json from its predictions rows (a pandas frame)."""
    items = {(item.subtask, item.index): item for item in load_items(data_dir, task)}
    order = {subtask: rank for rank, (subtask, _) in enumerate(items)}  # subtasks in file order
    result: dict[str, dict[str, list]] = {}
    keyed = sorted(zip(rows.subtask, rows["item"], rows.logprobs), key=lambda r: (order[r[0]], r[1]))
    for subtask, index, logprobs in keyed:
        logprobs = np.asarray(logprobs, dtype=np.float64)
        item = items[(subtask, int(index))]
        pred: dict[str, Any] = {
            "id": f"{subtask}_{index}",
            "pred": item.candidates[int(np.argmax(logprobs))][1],  # ties go to the first, as torch.max
        }
        if task == "wug":
            pred["prob"] = softmax_first(logprobs)
        result.setdefault(subtask, {"predictions": []})["predictions"].append(pred)
    return result


def reading_predictions(rows, data_dir: str | os.PathLike) -> tuple[dict, list[dict]]:
    """(reading predictions.json, the lines of prediction.jsonl), both as the official reading/run.py."""
    data = load_reading(data_dir)
    rows = rows.sort_values("item")
    preds, lines = [], []
    for index, surprisal, prev in zip(rows["item"], rows.value, rows.reference):
        index, surprisal, prev = int(index), float(surprisal), float(prev)
        preds.append({"id": index, "pred": surprisal, "prev_pred": prev})
        row = data[index]
        line = {"Index": index, "Sentence": row["item"], "Word": row["word"], "Logprob": surprisal}
        lines.append(line | {"Prev_Logprob": prev})
    return {"reading": {"predictions": preds}}, lines


def dump(obj: Any, path: Path) -> None:
    """JSON as the official code writes it (`json.dump`, no indent, NaN allowed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj))


def unscored_tasks(data_dir: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(official tasks whose data is not here, those whose data is here but cdsynth does not score)."""
    present = [task for task, folder in UNSCORED.items() if (Path(data_dir) / folder).exists()]
    return [task for task in UNSCORED if task not in present], present


def status(data_dir: str | os.PathLike, max_items: int | None) -> dict[str, Any]:
    missing, unscored = unscored_tasks(data_dir)
    return {
        "missing": missing,
        "present_not_scored": unscored,
        "max_items_per_task": max_items,
        "subsampled": max_items is not None,
        "complete": max_items is None and not missing and not unscored,
    }


def write_checkpoint_files(
    predictions: str | os.PathLike, data_dir: str | os.PathLike, out: str | os.PathLike, max_items: int | None
) -> list[Path]:
    """Write one checkpoint's official prediction files from its `predictions.parquet` into `out`.

    `out` plays the part of the official `results/<model>/<revision>/` folder (the model and revision
    names are the run's business: `write_submission`). `out/cdsynth_status.json` lists the official
    tasks left out and whether the items were subsampled. Returns the files written.
    """
    frame = pq.read_table(predictions).to_pandas()
    out = Path(out)
    written = []
    for task in SENTENCE_TASKS:
        rows = frame[frame.task == task]
        if len(rows):
            written.append(out / sentence_file(task))
            dump(sentence_predictions(task, rows, data_dir), written[-1])
    reading = frame[frame.task == "reading"]
    if len(reading):
        preds, lines = reading_predictions(reading, data_dir)
        written.append(out / READING_DIR / "predictions.json")
        dump(preds, written[-1])
        written.append(out / READING_DIR / "prediction.jsonl")
        with atomic_path(written[-1]) as tmp:
            tmp.write_text("".join(json.dumps(line) + "\n" for line in lines))
    write_json(status(data_dir, max_items), out / STATUS)
    return written


def revision_names(run_dir: str | os.PathLike, steps: list[int]) -> dict[str, int]:
    """BabyLM revision name -> step, for the evaluated `steps` of a run.

    A checkpoint's `checkpoint.json` may hold a `"mark"`: its BabyLM revision (`"chck_1M"`, ...). The
    last step is also the final model, `main`. A step that is neither marked nor last is named
    `step<N>`: its files are kept under that name, but it is not part of the collated submission.
    """
    names: dict[str, int] = {}
    for step in sorted(steps):
        info = Path(run_dir) / f"step{step}" / "checkpoint.json"
        mark = read_json(info).get("mark") if info.is_file() else None
        name = mark or f"step{step}"
        if name in names:
            raise DataError(f"{run_dir}: steps {names[name]} and {step} are both marked {name!r}.")
        names[name] = step
    if steps:
        names["main"] = max(steps)
    return names


def fast_scores(scores: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A revision's `fast_eval_results` entries, as `collate_preds.py` computes them, from its scores.json.

    Accuracies are fractions per subtask (Entity Tracking: only the `regular` file's subtasks, the only
    ones of the official fast data); WUG is the Spearman correlation per file; reading is the R2 gains
    (fractions) of self-paced reading (`spr`) and eye tracking (`rt`).
    """
    details = scores["details"]
    result = {}
    for task in ("blimp", "blimp_supplement", "ewok", "entity_tracking"):
        subtasks = details[task]["subtasks"]
        keep = [s for s in subtasks if task != "entity_tracking" or s.startswith("regular_")]
        result[task] = {s: subtasks[s] / 100 for s in keep}
    result["wug_adj"] = {"wug_adj_nominalization": details["wug_spearman"]["score"] / 100}
    reading, eye_tracking = details["reading"]["score"], details["eye_tracking"]["score"]
    result["reading"] = {"spr": reading / 100, "rt": eye_tracking / 100}
    return result


def link_tree(source: Path, dest: Path) -> None:
    """`dest` as a copy of `source` made of hard links (copies where the file system has none)."""

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, dest, copy_function=link)


def write_submission(
    eval_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    steps: list[int],
    model_name: str,
    data_dir: str | os.PathLike,
    max_items: int | None,
) -> Path:
    """Write `eval_dir/submission/<model_name>/`, the official results tree of one run, and return it.

    `<revision>/zero_shot/causal/...`: every evaluated checkpoint's files (`eval_dir/step<N>/official`)
    under its revision name (`revision_names`): `chck_*` marks, `main` for the last step, `step<N>` for
    the others. `all_full_preds_and_fast_scores_causal.json`: what `collate_preds.py --fast` builds, with
    the tasks cdsynth scores: `main`'s predictions per task, and `fast_eval_results`, one list entry per
    `chck_*` revision in training order. Unmarked steps are left out of it. `cdsynth_status.json`: the
    revisions, the official tasks missing from the collated file, whether the items were subsampled, and
    what differs from an official submission; its summary is printed too.
    """
    eval_dir = Path(eval_dir)
    out = eval_dir / "submission" / model_name
    if out.parent.exists():
        shutil.rmtree(out.parent)
    names = revision_names(run_dir, steps)
    for name, step in names.items():
        step_dir = eval_dir / f"step{step}"
        official = step_dir / "official"
        if not (official / STATUS).is_file():  # evaluated before the official files existed
            write_checkpoint_files(step_dir / "predictions.parquet", data_dir, official, max_items)
        link_tree(official, out / name)
    main = out / "main"
    collated: dict[str, Any] = {
        key: read_json(main / sentence_file(task)) for task, (key, *_) in SENTENCE_TASKS.items()
    }
    collated["reading"] = json.loads((main / READING_DIR / "predictions.json").read_text())
    fast = sorted((step, name) for name, step in names.items() if name.startswith("chck_"))
    per_revision = [fast_scores(read_json(eval_dir / f"step{step}" / "scores.json")) for step, _ in fast]
    tasks = ("blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "reading")
    collated["fast_eval_results"] = {task: [scores[task] for scores in per_revision] for task in tasks}
    dump(collated, out / COLLATED)
    state = status(data_dir, max_items) | {
        "model": model_name,
        "backend": BACKEND,
        "collated": COLLATED,
        "revisions": names,
        "full_eval_revision": "main",
        "fast_eval_revisions": [name for _, name in fast],
        "left_out_of_collated": [name for name in names if name != "main" and not name.startswith("chck_")],
        "notes": [
            "fast_eval_results are scored on the items cdsynth evaluated (evaluation_data/full_eval, or its "
            "subsample), not on the official fast_eval subsets",
            "the missing tasks are absent from the collated file: it is not a complete submission",
        ],
    }
    write_json(state, out / STATUS)
    print(summary(out, state))
    return out


def summary(out: Path, state: dict[str, Any]) -> str:
    lines = [f"BabyLM submission files: {out / COLLATED}"]
    lines.append(f"  revisions: {', '.join(f'{n} (step {s})' for n, s in state['revisions'].items())}")
    if state["missing"]:
        lines.append(f"  missing (no data here, not scored): {', '.join(state['missing'])}")
    if state["present_not_scored"]:
        lines.append(f"  present but not scored by cdsynth: {', '.join(state['present_not_scored'])}")
    if state["subsampled"]:
        most = state["max_items_per_task"]
        lines.append(f"  SUBSAMPLED: at most {most} items per subtask; the leaderboard needs all of them")
    if state["left_out_of_collated"]:
        lines.append(f"  not collated (no BabyLM mark): {', '.join(state['left_out_of_collated'])}")
    return "\n".join(lines)
