"""The dependency set: a lock that pins what the tests passed with, and the allowed range's lower end."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> list[Requirement]:
    """The runtime dependencies and the dev extra, read from pyproject.toml (Python 3.10 has no tomllib)."""
    text = (REPO / "pyproject.toml").read_text()
    requirements = []
    for block in ("dependencies = [", "dev = ["):
        body = text[text.index(block) + len(block) :].split("]", 1)[0]
        requirements += [Requirement(line) for line in re.findall(r'"([^"]+)"', body)]
    return requirements


def lock(name: str = "constraints.txt") -> dict[str, str]:
    pins = {}
    for line in (REPO / "envs" / name).read_text().splitlines():
        if line and not line.startswith("#"):
            package, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", package).lower()] = version
    return pins


def test_the_lock_pins_every_dependency_within_its_range():
    pins = lock()
    for requirement in pyproject_requirements():
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"envs/constraints.txt does not pin {name}: run envs/update-constraints.sh"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement}"


def test_the_readme_and_ci_install_the_lock_and_the_locked_torch():
    setup = f"pip install torch=={lock()['torch']} && .venv/bin/pip install -c envs/constraints.txt -e"
    assert setup in (REPO / "README.md").read_text()
    assert setup in (REPO / ".ci" / "run").read_text().replace(" --quiet", "")


@pytest.mark.slow
def test_the_lowest_allowed_transformers_passes_the_dropout_amateur_and_engine_tests():
    lowest = next(r for r in pyproject_requirements() if r.name == "transformers")
    bound = next(s.version for s in lowest.specifier if s.operator == ">=")
    made = subprocess.run(
        [str(REPO / "envs" / "transformers-lowest.sh")], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr[-3000:]
    python = Path(made.stdout.strip()) / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-c", "import transformers; print(transformers.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Version(installed) == Version(bound)
    tests = ["tests/synth/test_dropout_amateur.py", "tests/synth/test_engine.py"]
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-5000:]
