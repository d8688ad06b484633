"""A Hugging Face dataset card (README.md) for a finished synthetic corpus.

The card makes a corpus directory self-describing: `datasets.load_dataset(<dir>, split="train")` finds its
shards through the card's `configs`, and a reader sees how the text was made (method, checkpoints, every
setting), how big it is, how to check its files (sha256 per shard) and how to cite the method. It holds no
dates or timings, so the same manifest and statistics give a byte-identical card and reruns leave it alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from cdsynth.describe.contamination import TASKS
from cdsynth.errors import ConfigError
from cdsynth.io import atomic_path, read_arrow
from cdsynth.spec.protocol import Protocol
from cdsynth.spec.synthesis import Amateur, Scoring
from cdsynth.synth.manifest import read_manifest, shard_metadata

ARXIV_ID = "2510.08245"
PAPER_TITLE = "Contrastive Decoding for Synthetic Data Generation in Low-Resource Language Modeling"
CARD_NAME = "README.md"
DATA_FILES = "shard-*.arrow"
LICENSE_NOTE = (
    "The texts are continuations of prompts taken from the real training corpus, so the licences of its "
    "sources apply: TinyStories (CDLA-Sharing-1.0), Project Gutenberg (public domain) and WikiText "
    "(CC BY-SA). Check which sources the corpus was built from before redistributing."
)
# Hugging Face's `size_categories` buckets: (exclusive upper bound on rows, label).
SIZE_BUCKETS = [
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
    (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"),
    (10**12, "100B<n<1T"),
]
COLUMNS = [
    ("input_ids", "list<int32>", "token ids: BOS, the prompt tokens (when kept), the new tokens"),
    ("text", "string", "the sample decoded, without the leading BOS"),
    ("prompt_id", "string", "the real document the prompt was cut from (its `doc_id`, or row/line number)"),
    ("continuation", "int32", "which of the prompt's continuations this is (0-based)"),
    ("prefix_len", "int32", "how many leading `input_ids` are the prompt (0 when the prefix is dropped)"),
]
# The statistics in the order and words of `cdsynth.describe.measures.corpus_statistics`; other keys follow.
STAT_NOTES = {
    "samples": "rows",
    "generated_tokens": "new tokens generated",
    "mean_sample_tokens": "mean tokens per sample",
    "distinct_tokens": "distinct token n-grams / all token n-grams",
    "distinct_words": "distinct word n-grams / all word n-grams",
    "repetition": "repetition within samples",
    "documents_per_sample": "documents per sample (EOS-separated)",
    "eos_per_1k_tokens": "EOS tokens per 1,000 tokens",
    "bos_per_1k_tokens": "BOS tokens per 1,000 tokens",
    "vocab_coverage": "share of the vocabulary used",
    "copy_rate_reference": "n-gram overlap with the reference corpus",
    "copy_rate_prompt": "n-gram overlap with each sample's own prompt document",
    "authors_diversity": "the authors' diversity score: distinct-2 x -3 x -4 of the first 100K words",
    "contamination": "overlap with the BabyLM evaluation data in word n-grams: samples holding an evaluation "
    "n-gram, their share, and per task the share of its items found in the corpus",
}
STAT_PARTS = {
    "repetition": ["repeated_4gram_share", "longest_repeat_mean", "longest_repeat_max"],
    "authors_diversity": ["product", "distinct_2", "distinct_3", "distinct_4", "words"],
    "contamination": ["n", "samples", "contaminated_samples", "sample_share", "items"],
    "contamination.items": TASKS,
}
METHOD_NAMES = {
    "ancestral": "ancestral sampling",
    "vhead": "V-head sampling",
    "cd": "contrastive decoding",
}


def size_category(rows: int) -> str:
    """The Hub's size bucket, so the corpus is filed with datasets of its size."""
    return next((label for bound, label in SIZE_BUCKETS if rows < bound), "n>1T")


def front_matter(manifest: dict[str, Any], name: str) -> str:
    """The YAML header the Hub and `datasets.load_dataset` read; `configs` points at every shard."""
    header = {
        "pretty_name": name,
        "language": ["en"],
        "license": "other",
        "license_name": "prompt-source-licences",
        "license_details": LICENSE_NOTE,
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "multilinguality": ["monolingual"],
        "size_categories": [size_category(manifest.get("totals", {}).get("rows", 0))],
        "task_categories": ["text-generation"],
        "tags": ["synthetic", "contrastive-decoding"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILES}]}],
    }
    body = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{body}---\n"


def show(value: Any) -> str:
    """A setting or statistic as table text; floats keep full precision (repr), infinities read -inf."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def cell(text: str) -> str:
    """Table-safe Markdown: a `|` or newline in a path or value would break the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ordered_keys(mapping: dict[str, Any], known: list[str]) -> list[str]:
    """Known keys in their canonical order, then the rest sorted: the card must not depend on the order
    a dict was built or read back (`write_json` sorts keys)."""
    return [k for k in known if k in mapping] + sorted(k for k in mapping if k not in known)


def amateur_words(amateur: str | None) -> str:
    """What the amateur spec means, in the paper's terms (CD-Early, CD-Small, CD-Drop)."""
    if amateur is None:
        return "none"
    try:
        parsed = Amateur.parse(amateur)
    except ConfigError:
        return f"the checkpoint {amateur}"
    if parsed.kind == "early":
        return f"the expert's own training run at the earlier checkpoint step {parsed.step} (CD-Early)"
    if parsed.kind == "dropout":
        return f"the expert itself, attention dropout {parsed.dropout:g} kept on while it scores (CD-Drop)"
    where = "".join(
        [
            "" if parsed.seed is None else f", seed {parsed.seed}",
            "" if parsed.step is None else f", step {parsed.step}",
        ]
    )
    return f"a separately trained smaller model, run {parsed.model}{where} (CD-Small)"


def expert_words(params: dict[str, Any]) -> str:
    """The expert as the corpus definition names it: the workflow's GOOD run, or the CLI's directory."""
    good = params.get("good")
    if not isinstance(good, dict):
        return f"the checkpoint {params['expert']}" if params.get("expert") else "not recorded"
    step = good.get("step")
    at = "its lowest-validation-loss checkpoint" if step == "best" else f"step {step}"
    return f"GOOD: run {good.get('model')}, seed {good.get('seed')}, at {at}"


def recorded_scoring(params: dict[str, Any]) -> Scoring | None:
    """The scoring settings a manifest records, typed; None where it records none this package reads."""
    try:
        return Scoring(**params["scoring"])
    except (KeyError, TypeError, ConfigError):
        return None


def truncation_words(scoring: Scoring) -> str:
    """The top-k / top-p clause ("" without truncation), naming what the cut tokens score."""
    parts = []
    if scoring.top_k is not None:
        parts.append(f"top-k {scoring.top_k}")
    if scoring.top_p is not None:
        parts.append(f"top-p {show(scoring.top_p)}")
    if not parts:
        return ""
    return f", after {' and '.join(parts)} truncation (cut tokens score {show(scoring.cut_value)})"


def scoring_words(scoring: Scoring, amateur: str | None) -> str:
    """The next-token rule of the corpus's method, with its own numbers."""
    temperature = show(scoring.temperature)
    if scoring.method == "ancestral":
        return (
            f"Each new token is sampled from the expert's distribution at temperature {temperature}"
            f"{truncation_words(scoring)}."
        )
    head = (
        f"the expert's plausibility head V_head = {{x : p_G(x) > {show(scoring.alpha)} · max p_G}} "
        f"(p_G: the expert's distribution at temperature {temperature})"
    )
    if scoring.needs_amateur:
        score = (
            f"log p_G(x) − {show(scoring.strength)} · log p_B(x), where p_B is the amateur, "
            f"{amateur_words(amateur)}"
        )
    else:
        score = "log p_G(x), with no amateur (No-Contrast-V-Head)"
    return (
        f"At each step, tokens in {head} score {score}; tokens outside it score "
        f"{show(scoring.penalty)}, and the next token is drawn from the softmax of the scores"
        f"{truncation_words(scoring)}."
    )


def summary(params: dict[str, Any]) -> str:
    """One paragraph saying in words how every sample was made."""
    scoring = recorded_scoring(params)
    prefix = params.get("prefix_tokens")
    prompt = "BOS alone" if prefix == 0 else f"BOS and the first {show(prefix)} tokens of a real document"
    kept = "kept in" if params.get("keep_prefix", True) else "dropped from"
    method = METHOD_NAMES[scoring.method] if scoring else "an unknown method"
    rule = scoring_words(scoring, params.get("amateur")) if scoring else "Its scoring rule is not recorded."
    continuations, new_tokens = show(params.get("continuations")), show(params.get("new_tokens"))
    return (
        f"Synthetic pretraining text generated with {method} (arXiv:{ARXIV_ID}). Each prompt is {prompt}; "
        f"it is continued {continuations} times by {new_tokens} new tokens each, and the prompt is {kept} "
        f"the stored sample. {rule}"
    )


def models_section(params: dict[str, Any], expert: str | None, amateur: str | None) -> str:
    rows = [
        ["expert (GOOD)", expert or "not recorded", expert_words(params)],
        ["amateur (BAD)", amateur or "none", amateur_words(params.get("amateur"))],
    ]
    return "## Models\n\n" + table(["Role", "Checkpoint", "Definition"], rows)


def settings_rows(params: dict[str, Any]) -> list[list[str]]:
    """Every setting of the corpus definition, nested ones (scoring, good) as `outer.inner`."""
    scoring_keys = [f.name for f in fields(Scoring)]
    known = ["scoring", "amateur", *[f.name for f in fields(Protocol)], "backend"]
    rows = []
    for key in ordered_keys(params, known):
        value = params[key]
        if isinstance(value, dict):
            inner = ordered_keys(value, scoring_keys if key == "scoring" else [])
            rows += [[f"`{key}.{k}`", show(value[k])] for k in inner]
        else:
            rows.append([f"`{key}`", show(value)])
    return rows


def settings_section(params: dict[str, Any]) -> str:
    return (
        "## Settings\n\nThe corpus definition as recorded in `manifest.json` (`params`); every shard's "
        "schema metadata (`cdsynth`) records it too.\n\n" + table(["Setting", "Value"], settings_rows(params))
    )


def size_section(manifest: dict[str, Any]) -> str:
    totals = manifest.get("totals", {})
    shards = manifest.get("shards", [])
    rows = [
        [f"`{s['file']}`", show(s["rows"]), show(s["new_tokens"]), show(s["tokens"]), f"`{s['sha256'][:16]}`"]
        for s in shards
    ]
    return (
        f"## Size\n\n{show(totals.get('rows'))} samples in {len(shards)} shard(s): "
        f"{show(totals.get('tokens'))} tokens, of which {show(totals.get('new_tokens'))} generated. "
        "The full sha256 of each shard is in `manifest.json`.\n\n"
        + table(["File", "Rows", "New tokens", "Tokens", "sha256 (prefix)"], rows)
    )


def columns_section() -> str:
    rows = [[f"`{name}`", f"`{kind}`", note] for name, kind, note in COLUMNS]
    return "## Columns\n\n" + table(["Column", "Type", "Meaning"], rows)


def flattened(key: str, value: Any) -> list[tuple[str, Any]]:
    """A statistic's values, nested ones (n-grams, repetition, contamination's items) as `outer.inner`."""
    if not isinstance(value, dict):
        return [(key, value)]
    inner = ordered_keys(value, STAT_PARTS.get(key, []))
    return [pair for k in inner for pair in flattened(f"{key}.{k}", value[k])]


def stats_rows(stats: dict[str, Any]) -> list[list[str]]:
    """One row per statistic's value; None reads not computed."""
    rows = []
    for key in ordered_keys(stats, list(STAT_NOTES)):
        note = STAT_NOTES.get(key, "")
        rows += [
            [f"`{k}`", "not computed" if v is None else show(v), note] for k, v in flattened(key, stats[key])
        ]
    return rows


def stats_section(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "## Statistics\n\nStatistics: not computed."
    return "## Statistics\n\n" + table(["Statistic", "Value", "Meaning"], stats_rows(stats))


def load_section(name: str) -> str:
    path = f"path/to/{name}"
    return f"""## How to load

`path/to/{name}` is the directory holding this card (or its Hub repository id). With `datasets`:

```python
import datasets

ds = datasets.load_dataset("{path}", split="train")
```

The shards are Arrow IPC *stream* files; with pyarrow alone:

```python
import glob
import json

import pyarrow as pa

files = sorted(glob.glob("{path}/{DATA_FILES}"))
table = pa.concat_tables(pa.ipc.open_stream(pa.memory_map(f)).read_all() for f in files)
settings = json.loads(table.schema.metadata[b"cdsynth"])  # how the (first) shard was made
```"""


def cite_section() -> str:
    return f"""## How to cite

Please cite the paper whose method made this corpus (check the arXiv page,
https://arxiv.org/abs/{ARXIV_ID}, for its authors and final reference):

```bibtex
@misc{{arxiv{ARXIV_ID.replace(".", "_")},
  title = {{{PAPER_TITLE}}},
  author = {{{{the authors of arXiv:{ARXIV_ID}}}}},
  year = {{2025}},
  eprint = {{{ARXIV_ID}}},
  archivePrefix = {{arXiv}},
  url = {{https://arxiv.org/abs/{ARXIV_ID}}},
}}
```"""


def licence_section() -> str:
    return f"## Licence\n\n{LICENSE_NOTE}"


def dataset_card(
    manifest: dict[str, Any],
    stats: dict[str, Any] | None,
    *,
    name: str,
    expert: str | None,
    amateur: str | None,
    extra_sections: Sequence[str] = (),
) -> str:
    """The card's text: front matter, then the method, models, settings, size, statistics, loading, citation.

    `expert` and `amateur` are the checkpoints as the shards record them (resolved paths, or `dropout:P`);
    the manifest's `params` only names them by their definition. `extra_sections` (e.g. what a filter
    dropped) come after the statistics.
    """
    params = manifest.get("params", {})
    sections = [
        f"# {name}\n\n{summary(params)}",
        models_section(params, expert, amateur),
        settings_section(params),
        size_section(manifest),
        columns_section(),
        stats_section(stats),
        *extra_sections,
        load_section(name),
        cite_section(),
        licence_section(),
    ]
    return front_matter(manifest, name) + "\n" + "\n\n".join(sections) + "\n"


def recorded_models(corpus_dir: Path, manifest: dict[str, Any]) -> tuple[str | None, str | None]:
    """(expert, amateur) as the first shard records them; the definition's names when it records none."""
    params = manifest.get("params", {})
    info: dict[str, Any] = {}
    if manifest.get("shards"):
        info = shard_metadata(read_arrow(corpus_dir / manifest["shards"][0]["file"]))
    expert = info.get("expert", params.get("expert"))
    amateur = info.get("amateur", params.get("amateur_dir") or params.get("amateur"))
    return expert, amateur


def write_card(
    corpus_dir: str | os.PathLike, stats: dict[str, Any] | None = None, name: str | None = None
) -> Path:
    """Write `corpus_dir/README.md` atomically; an identical card is left untouched (its mtime too), so a
    rerun does not make downstream rules or a Hub upload see a change. `name`: the published directory's
    name, when `corpus_dir` is a work directory (default: its own name)."""
    corpus_dir = Path(corpus_dir)
    manifest = read_manifest(corpus_dir)
    expert, amateur = recorded_models(corpus_dir, manifest)
    name = name or corpus_dir.resolve().name
    text = dataset_card(manifest, stats, name=name, expert=expert, amateur=amateur)
    path = corpus_dir / CARD_NAME
    if path.is_file() and path.read_bytes() == text.encode("utf-8"):
        return path
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    return path
