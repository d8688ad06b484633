#!/usr/bin/env bash
# A venv with the lowest transformers that pyproject.toml allows, the CPU torch and this project with
# pytest: the dropout-amateur and engine tests run there (tests/test_dependencies.py), so the range's lower
# end is tested, not assumed. Its other packages come from envs/constraints-transformers-lowest.txt. The
# venv lives outside the checkout and is reused while its pins are unchanged.
#   usage: envs/transformers-lowest.sh [VENV]
#   (default: $CDSYNTH_TF_LOWEST_VENV, else $XDG_CACHE_HOME or ~/.cache, then cdsynth/transformers-<version>)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/envs/venv.sh"
# The lower bound is written once, in pyproject.toml.
lowest=$(sed -n 's/^ *"transformers>=\([0-9.]*\).*/\1/p' "$root/pyproject.toml")
[[ -n "$lowest" ]] || { echo "$0: no transformers>=X in pyproject.toml" >&2; exit 1; }
venv=${1:-${CDSYNTH_TF_LOWEST_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/cdsynth/transformers-$lowest}}
lock=$(lock_file transformers-lowest)
pins=$(lock_pins transformers-lowest "torch==2.13.0 transformers==$lowest (project, pytest)")
# pip's messages go to stderr: stdout carries only the venv's path, for "$(envs/transformers-lowest.sh)".
if new_venv "$venv" "$pins"; then
    "$venv/bin/pip" install --quiet -c "$lock" torch==2.13.0 >&2
    "$venv/bin/pip" install --quiet -c "$lock" "transformers==$lowest" pytest -e "$root" >&2
    mark_venv "$venv" "$pins"
fi
# The checkout may have moved since the venv was made: point the editable install here (no dependencies).
"$venv/bin/pip" install --quiet --no-deps -e "$root" >&2
echo "$venv"
