"""The model card (README.md) of one exported revision: what the checkpoint has seen, the data, the
synthetic corpus, the word budget and the scores.

Everything comes from files the workflow wrote: the checkpoint's `checkpoint.json`, and where given a
budget.json, the run's evaluation directory and the synthetic corpus's manifest.json. These are read
defensively (a field may be missing, or hold another type, in a file written by an older or newer
version): what is not there reads "not recorded" or "not available", never a guess. The card holds no
dates, local paths or timings, so the same inputs give the same bytes, and the same commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from cdsynth.describe.card import amateur_words, expert_words, show, summary, table
from cdsynth.spec.tracks import budget_problem, limits_of

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Revision:
    """One commit of the repository: the branch names it is published under and its checkpoint."""

    names: tuple[str, ...]
    step: int
    info: dict[str, Any] = field(default_factory=dict)  # the checkpoint's checkpoint.json


@dataclass(frozen=True)
class Inputs:
    """What the card may say beyond checkpoint.json; None: that input was not given."""

    run: str
    final_step: int
    revisions: tuple[Revision, ...]
    budget: dict[str, Any] | None = None
    track: str | None = None  # the BabyLM track the budget is held against (None: not given)
    scores: dict[int, dict[str, Any]] | None = None  # step -> scores.json, when an evaluation dir is given
    corpus: dict[str, Any] | None = None  # a synthetic corpus's manifest.json
    corpus_name: str | None = None


def get(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]..., or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def number(value: Any) -> str:
    """A count or measure as table text; anything else (missing, a string in a number's place) reads
    "not recorded"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NOT_RECORDED
    return show(value)


def words(value: Any) -> str:
    return f"{number(value)} words" if number(value) != NOT_RECORDED else NOT_RECORDED


def front_matter() -> str:
    header = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "language": ["en"],
        "tags": ["babylm", "babylm-2025", "llama", "causal-lm", "cdsynth"],
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n"


def revision_names(revision: Revision) -> str:
    return " and ".join(f"`{name}`" for name in revision.names)


def intro(revision: Revision, inputs: Inputs) -> str:
    final = revision.step == inputs.final_step
    what = "the final model" if final else "an intermediate checkpoint"
    return (
        f"# {inputs.run} — {revision_names(revision)}\n\n"
        f"A LLaMA-architecture causal language model trained by cdsynth (run `{inputs.run}`). This is "
        f"revision {revision_names(revision)}: {what}, the checkpoint saved after training step "
        f"{revision.step:,} of {inputs.final_step:,}.\n\n"
        "Following the BabyLM 2025 rules, intermediate checkpoints are the branches `chck_1M` … "
        "`chck_1000M`, named by the millions of words of training text the model had seen; `main` holds "
        "the final model."
    )


def seen_section(revision: Revision) -> str:
    info = revision.info
    rows = [
        ["training step", number(info.get("step", revision.step))],
        ["tokens seen", number(info.get("tokens"))],
        ["words seen", words(info.get("words"))],
        ["words seen, real text", words(info.get("words_real"))],
        ["words seen, synthetic text", words(info.get("words_synthetic"))],
        ["training loss (mean since the previous checkpoint)", number(info.get("train_loss"))],
        ["validation loss", number(info.get("val_loss"))],
    ]
    return "## What this revision has seen\n\n" + table(["", "Value"], rows)


def revisions_section(inputs: Inputs) -> str:
    rows = [
        [", ".join(f"`{name}`" for name in r.names), f"{r.step:,}", words(r.info.get("words"))]
        for r in inputs.revisions
    ]
    return (
        "## Revisions in this repository\n\nLoad one with `from_pretrained(REPO, revision=NAME)`.\n\n"
        + table(["Revision", "Step", "Words seen"], rows)
    )


def data_section(budget: dict[str, Any] | None) -> str:
    if budget is None:
        return "## Training data\n\nNot available: the export was given no budget file (`--budget`)."
    data = get(budget, "data")
    rows = [
        ["real training text", words(get(data, "real_train_words"))],
        ["prompt text for the synthetic corpus", words(get(data, "prompt_words"))],
        ["all data", words(get(data, "total_words"))],
    ]
    seen = get(budget, "seen")
    seen_rows = [
        ["real words seen in training", words(get(seen, "real"))],
        ["synthetic words seen in training", words(get(seen, "synthetic"))],
        ["all words seen", words(get(seen, "total"))],
        ["passes over the real text", number(get(seen, "passes_over_real"))],
        ["tokens seen", number(get(seen, "tokens"))],
    ]
    return (
        "## Training data\n\nThe data of the whole run (budget file):\n\n"
        + table(["", "Words"], rows)
        + "\n\nWhat the whole run saw, up to the final model:\n\n"
        + table(["", "Value"], seen_rows)
    )


def corpus_section(inputs: Inputs) -> str:
    manifest = inputs.corpus
    if manifest is None:
        return "## Synthetic corpus\n\nNot available: the export was given no corpus manifest (`--corpus`)."
    params = get(manifest, "params")
    params = params if isinstance(params, dict) else {}
    totals = get(manifest, "totals")
    rows = [
        ["expert (GOOD)", expert_words(params)],
        ["amateur (BAD)", amateur_words(params.get("amateur")) if params else NOT_RECORDED],
    ]
    size = (
        f"{number(get(totals, 'rows'))} samples, {number(get(totals, 'tokens'))} tokens, of which "
        f"{number(get(totals, 'new_tokens'))} generated."
    )
    name = f" `{inputs.corpus_name}`" if inputs.corpus_name else ""
    return (
        f"## Synthetic corpus\n\nThe synthetic corpus{name}: {summary(params)}\n\n"
        f"Size: {size}\n\nThe models that made it:\n\n" + table(["Role", "Model"], rows)
    )


def track_lines(budget: dict[str, Any], track: str | None) -> list[str]:
    """The track, its limits (`cdsynth.spec.tracks`) and whether the counted budget keeps them."""
    limits = limits_of(track) if track is not None else None
    if limits is None:
        return [
            f"- Track: {'not given (`--track`)' if track is None else 'none (the budget is not checked)'}"
        ]
    within = "yes" if budget_problem(track, budget) is None else "**no**"
    return [
        f"- Track: {track}",
        f"- Limits: at most {words(limits.data_words)} of data, and at most {words(limits.words_seen)} "
        "seen in training",
        f"- Within the limits: {within}",
    ]


def budget_section(budget: dict[str, Any] | None, track: str | None) -> str:
    if budget is None:
        return "## Word budget\n\nNot available: the export was given no budget file (`--budget`)."
    lines = track_lines(budget, track)
    ancillary = get(budget, "ancillary")
    ancillary = [a for a in ancillary if isinstance(a, dict)] if isinstance(ancillary, list) else []
    if ancillary:
        rows = [
            [
                str(a.get("role", NOT_RECORDED)),
                str(a.get("run", NOT_RECORDED)),
                number(a.get("step")),
                words(a.get("words_seen")),
                words(a.get("data_words")),
            ]
            for a in ancillary
        ]
        helpers = (
            "\n\nAncillary models (they made the synthetic text, so the words they were trained on "
            "count toward the budget):\n\n" + table(["Role", "Run", "Step", "Words seen", "Data words"], rows)
        )
    else:
        helpers = "\n\nAncillary models: none recorded."
    return "## Word budget\n\n" + "\n".join(lines) + helpers


def scores_section(revision: Revision, inputs: Inputs) -> str:
    if inputs.scores is None:
        return "## Scores\n\nNot available: the export was given no evaluation directory (`--eval`)."
    result = inputs.scores.get(revision.step)
    scores = get(result, "scores")
    if not isinstance(scores, dict) or not scores:
        return f"## Scores\n\nNot available: this checkpoint (step {revision.step:,}) was not evaluated."
    rows = [[f"`{task}`", number(scores[task])] for task in sorted(scores)]
    limit = get(result, "max_items_per_task")
    subset = (
        f" on at most {limit:,} items per task (a subset: not comparable with full-data scores)"
        if isinstance(limit, int)
        else ""
    )
    return (
        f"## Scores\n\nScored by cdsynth's evaluation{subset}; the tasks are those of the BabyLM 2025 "
        "pipeline, `perplexity` on the corpus's own test split.\n\n" + table(["Task", "Score"], rows)
    )


def load_section(revision: Revision) -> str:
    name = revision.names[0]
    return f"""## How to load

Works with transformers 4.51.3 (the BabyLM 2025 evaluation pipeline's) and 5.x alike:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("REPO", revision="{name}")
tokenizer = AutoTokenizer.from_pretrained("REPO", revision="{name}")
```

The tokenizer adds `<s>` (BOS) before every text."""


def model_card(revision: Revision, inputs: Inputs) -> str:
    sections = [
        intro(revision, inputs),
        seen_section(revision),
        revisions_section(inputs),
        data_section(inputs.budget),
        corpus_section(inputs),
        budget_section(inputs.budget, inputs.track),
        scores_section(revision, inputs),
        load_section(revision),
    ]
    return front_matter() + "\n" + "\n\n".join(sections) + "\n"
