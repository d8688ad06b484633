"""A synthetic corpus on disk: the shard format and the manifest that gathers a finished corpus's shards.

Each shard is an Arrow file of rows (`input_ids`, `text`, `prompt_id`, `continuation`, `prefix_len`)
whose schema metadata records every generation parameter; the manifest lists every shard with its counts
and sha256.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, sha256_file, write_json

SHARD_SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("text", pa.string()),
        ("prompt_id", pa.string()),
        ("continuation", pa.int32()),
        ("prefix_len", pa.int32()),
    ]
)


def shard_metadata(table: pa.Table) -> dict[str, Any]:
    """What a shard records of how it was made (empty for a file not written by `generate_shard`)."""
    recorded = (table.schema.metadata or {}).get(b"cdsynth")
    return json.loads(recorded) if recorded else {}


def checked_shard(path: str | os.PathLike, index: int, corpus: dict[str, Any]) -> pa.Table:
    """Shard `index` of the corpus defined by `corpus`, refused if it was generated for anything else.

    A shard records the definition of the corpus it was made for (`synthesize_shards`); one copied or
    left over from other settings would otherwise be gathered silently into this corpus.
    """
    table = read_arrow(path)
    info = shard_metadata(table)
    # The definition as it reads back from a shard's JSON (tuples become lists).
    expected = json.loads(json.dumps(corpus, sort_keys=True))
    made_for = info.get("corpus") or {}
    if made_for != expected or info.get("shard") != index:
        differ = sorted(
            key for key in expected.keys() | made_for.keys() if made_for.get(key) != expected.get(key)
        )
        what = f"settings that differ: {', '.join(differ)}" if differ else f"it is shard {info.get('shard')}"
        raise DataError(
            f"{path}: not shard {index} of this corpus ({what}). It was generated for another corpus or "
            "copied here; delete it and rerun to regenerate it."
        )
    return table


def write_manifest(
    shard_paths: list[str], out_path: str | os.PathLike, params: dict[str, Any]
) -> dict[str, Any]:
    """Parameters, per-shard counts and sha256, and totals of a finished corpus."""
    shards = []
    for index, path in enumerate(shard_paths):
        table = checked_shard(path, index, params)
        info = shard_metadata(table)
        shards.append(
            {
                "file": Path(path).name,
                "rows": table.num_rows,
                "new_tokens": info["new_tokens"],
                "tokens": pc.sum(pc.list_value_length(table.column("input_ids"))).as_py(),
                "seed": info["seed"],
                "sha256": sha256_file(path),
            }
        )
    manifest = {
        "params": params,
        "shards": shards,
        "totals": {k: sum(s[k] for s in shards) for k in ("rows", "new_tokens", "tokens")},
    }
    write_json(manifest, out_path)
    return manifest


def read_manifest(corpus_dir: Path) -> dict[str, Any]:
    """A finished corpus's manifest, or an error saying how to make one."""
    path = corpus_dir / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path}: not found. Generate the corpus first (rerun Snakemake).")
    return read_json(path)


def verified_shards(corpus_dir: Path, manifest: dict[str, Any]) -> Iterator[tuple[dict[str, Any], pa.Table]]:
    """Each shard of a finished corpus in manifest order, with its manifest entry: its sha256 checked
    against the manifest's, and its recorded definition against the corpus's (`checked_shard`)."""
    for index, shard in enumerate(manifest["shards"]):
        path = corpus_dir / shard["file"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            raise DataError(
                f"{path}: missing, or its sha256 differs from manifest.json. The synthetic corpus is "
                f"corrupt: delete {corpus_dir} and rerun Snakemake."
            )
        yield shard, checked_shard(path, index, manifest["params"])
