"""The workflow's own checks: Snakemake's linter and snakefmt, as CI runs them."""

from __future__ import annotations

import re
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


def test_no_rule_computes_a_param_from_its_input_or_output():
    """Snakemake records no param computed from a job's input, output, threads or resources (it calls them
    derived), so a change to one would rerun nothing: params come from the config and the wildcards."""
    deriving = re.compile(r"lambda [^:]*\b(input|output|threads|resources)\b[^:]*:")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((REPO / "rules").glob("*.smk"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if deriving.search(line)
    ]
    assert found == []
