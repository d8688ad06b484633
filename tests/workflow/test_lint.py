"""The workflow's own checks: Snakemake's linter and snakefmt, as CI runs them."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO


def test_snakemake_lint_is_clean():
    command = [sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Congratulations" in output, output[-3000:]


def test_the_snakefile_and_rules_are_snakefmt_formatted():
    command = [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
