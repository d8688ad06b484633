"""A synthetic corpus on disk: the shard format and the manifest that gathers a finished corpus's shards.

Each shard is an Arrow file of rows (`input_ids`, `text`, `prompt_id`, `continuation`, `prefix_len`)
whose schema metadata records every generation parameter; the manifest lists every shard with its counts
and sha256.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cdsynth.io import read_arrow, sha256_file, write_json

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
    return json.loads(table.schema.metadata[b"cdsynth"])


def write_manifest(
    shard_paths: list[str], out_path: str | os.PathLike, params: dict[str, Any]
) -> dict[str, Any]:
    """Parameters, per-shard counts and sha256, and totals of a finished corpus."""
    shards = []
    for path in shard_paths:
        table = read_arrow(path)
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
