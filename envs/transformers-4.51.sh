#!/usr/bin/env bash
# A venv with transformers 4.51.3, the version the official BabyLM 2025 evaluation pipeline pins, and no
# torch: enough to check that our checkpoints' tokenizer and config files load there
# (tests/data/test_tokenizer.py).
# With its site-packages first on PYTHONPATH, the project's own Python (same version) imports 4.51.3 and
# its own torch, to load whole models (tests/export/test_export.py).
# Its other packages come from envs/constraints-transformers-4.51.txt. The venv lives outside the checkout
# and is reused while its pins are unchanged.
#   usage: envs/transformers-4.51.sh [VENV]
#   (default: $CDSYNTH_TF451_VENV, else $XDG_CACHE_HOME or ~/.cache, then cdsynth/transformers-4.51.3)
set -euo pipefail
source "$(dirname "$0")/venv.sh"
venv=${1:-${CDSYNTH_TF451_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/cdsynth/transformers-4.51.3}}
lock=$(lock_file transformers-4.51)
pins=$(lock_pins transformers-4.51 "transformers==4.51.3")
# pip's messages go to stderr: stdout carries only the venv's path, for "$(envs/transformers-4.51.sh)".
if new_venv "$venv" "$pins"; then
    "$venv/bin/pip" install --quiet -c "$lock" transformers==4.51.3 >&2
    mark_venv "$venv" "$pins"
fi
echo "$venv"
