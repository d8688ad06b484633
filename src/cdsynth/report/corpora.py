"""The report's "Corpora" section: every synthetic corpus's statistics side by side, as a table and a
figure, and the same prompts continued by each method. The table's first row is the real train split,
with the one statistic it has: its overlap with the evaluation data.

The corpora of one GOOD take their prompts in the same seeded order and cut them into shards the same way,
so shard 0 of every corpus starts with the same prompts: the samples page shows them row by row.
"""

from __future__ import annotations

import csv
import html
import os
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from cdsynth.io import atomic_path, read_arrow, read_json
from cdsynth.report.figures import plot_corpus_statistics

# Table columns: (label, path into stats.json); every one is a share or a mean, so the figure can plot it.
COLUMNS = {
    "distinct-1 (tokens)": ("distinct_tokens", "1"),
    "distinct-2 (tokens)": ("distinct_tokens", "2"),
    "distinct-3 (tokens)": ("distinct_tokens", "3"),
    "distinct-2 (words)": ("distinct_words", "2"),
    "repeated 4-grams": ("repetition", "repeated_4gram_share"),
    "longest repeat (mean tokens)": ("repetition", "longest_repeat_mean"),
    "documents per sample": ("documents_per_sample",),
    "EOS per 1k tokens": ("eos_per_1k_tokens",),
    "vocabulary coverage": ("vocab_coverage",),
    "8-grams copied from the real train split": ("copy_rate_reference",),
    "8-grams copied from the own prompt": ("copy_rate_prompt",),
    "diversity (the authors' score)": ("authors_diversity", "product"),
    "samples holding an evaluation n-gram": ("contamination", "sample_share"),
}
REAL_SPLIT = "real train split"
# The figure's panels: shares in [0, 1] that tell the methods apart.
FIGURE_COLUMNS = [
    "distinct-2 (tokens)",
    "repeated 4-grams",
    "vocabulary coverage",
    "8-grams copied from the real train split",
    "samples holding an evaluation n-gram",
]


def stat_value(stats: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = stats
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def statistics_row(name: str, stats: dict[str, Any]) -> dict[str, Any]:
    """A corpus's size, every column (None where its statistics lack one), then per evaluation task the
    share of its items found in the corpus."""
    row = {"corpus": name, "samples": stats["samples"], "generated tokens": stats.get("generated_tokens")}
    row |= {label: stat_value(stats, path) for label, path in COLUMNS.items()}
    items = stat_value(stats, ("contamination", "items")) or {}
    return row | {f"{task} items found": share for task, share in items.items()}


def statistics_rows(corpora: dict[str, str | os.PathLike]) -> list[dict[str, Any]]:
    """One row per corpus (name -> directory holding stats.json)."""
    return [statistics_row(name, read_json(Path(d) / "stats.json")) for name, d in corpora.items()]


def write_statistics_table(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def side_by_side(
    corpora: dict[str, str | os.PathLike], tokenizer_dir: str | os.PathLike, prompts: int, tokens: int
) -> list[dict[str, Any]]:
    """The first `prompts` prompts of shard 0, each with every corpus's first continuation.

    Returns [{"prompt": text, "continuations": {corpus: first `tokens` generated tokens as text}}]; the
    prompt is decoded from the real prefix (BOS left out), identical in every corpus.
    """
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    firsts = {name: _first_continuations(Path(d) / "shard-00000.arrow") for name, d in corpora.items()}
    shared = [pid for pid in next(iter(firsts.values())) if all(pid in rows for rows in firsts.values())]
    out = []
    for pid in shared[:prompts]:
        rows = {name: rows[pid] for name, rows in firsts.items()}
        ids, prefix = next(iter(rows.values()))
        out.append(
            {
                "prompt": tokenizer.decode(ids[1:prefix]),
                "continuations": {
                    name: tokenizer.decode(ids[prefix : prefix + tokens])
                    for name, (ids, prefix) in rows.items()
                },
            }
        )
    return out


def _first_continuations(shard: Path) -> dict[str, tuple[list[int], int]]:
    """prompt id -> (input_ids, prefix_len) of its continuation 0, in shard order."""
    table = read_arrow(shard)
    keep = [i for i, c in enumerate(table.column("continuation").to_pylist()) if c == 0]
    rows = table.take(keep).select(["prompt_id", "input_ids", "prefix_len"]).to_pylist()
    return {row["prompt_id"]: (row["input_ids"], row["prefix_len"]) for row in rows}


def write_samples_page(samples: list[dict[str, Any]], path: str | os.PathLike, tokens: int) -> None:
    """A standalone HTML page: one row per prompt, one column per corpus; the real prompt is marked."""
    names = list(samples[0]["continuations"]) if samples else []
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    body = []
    for sample in samples:
        prompt = f"<mark>{html.escape(sample['prompt'])}</mark>"
        cells = "".join(f"<td>{prompt} {html.escape(sample['continuations'][name])}</td>" for name in names)
        body.append(f"<tr>{cells}</tr>")
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Synthetic corpora side by side</title>"
        "<style>body{font-family:sans-serif}td,th{vertical-align:top;border:1px solid #ccc;padding:6px;"
        "width:25em}mark{background:#ffe9a8}table{border-collapse:collapse}</style></head><body>\n"
        "<p>The same prompts (highlighted: the real prefix each sample starts from) continued by each "
        f"method: the first {tokens} generated tokens of continuation 0.</p>\n"
        f"<table><tr>{head}</tr>\n" + "\n".join(body) + "\n</table></body></html>\n"
    )
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")


def describe_corpora(
    corpora: dict[str, str | os.PathLike],
    real_stats: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    outputs: dict[str, Any],
    prompts: int = 4,
    tokens: int = 60,
) -> None:
    """The Corpora section: `outputs` names the statistics CSV, the figure paths and the samples page;
    `real_stats` is the real train split's statistics file, the table's first row."""
    rows = statistics_rows(corpora)
    write_statistics_table([statistics_row(REAL_SPLIT, read_json(real_stats)), *rows], outputs["table"])
    plot_corpus_statistics(rows, FIGURE_COLUMNS, outputs["figure"])
    write_samples_page(side_by_side(corpora, tokenizer_dir, prompts, tokens), outputs["samples"], tokens)
