"""Wall time of `snakemake -n` on a config whose outputs are all up to date (default: the paper preset).

Running the paper grid is out of reach here, so the script fakes a finished run: it lists every job of a
dry run in a scratch directory, creates each output (empty files; directories for directory outputs),
with mtimes that increase along the pipeline, and records Snakemake's metadata for them with `--touch`,
as a real run would have. It then times `snakemake -n` there, which should find nothing to do, and, for
scale, Snakemake's own start-up on a one-rule workflow.

    python bench/dry_run_time.py                       # workflow/presets/paper.yaml
    python bench/dry_run_time.py --configfile config.yaml --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
sys.path.insert(0, str(REPO / "tests"))
from helpers import fake_finished_run, workflow_args  # noqa: E402 (the tests' faking, shared)


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    return time.perf_counter() - start, result.stdout + result.stderr


def report(label: str, seconds: list[float]) -> None:
    spread = f"min {min(seconds):.2f}, max {max(seconds):.2f}"
    print(f"{label}: median {statistics.median(seconds):.2f} s ({spread}, {len(seconds)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configfile", type=Path, default=REPO / "workflow/presets/paper.yaml")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    configfile = args.configfile.resolve()
    # Beside the project, so that the preset's ../shared/data paths resolve as they do from the project.
    with tempfile.TemporaryDirectory(dir=REPO.parent) as scratch, tempfile.TemporaryDirectory() as one_rule:
        workdir = Path(scratch)
        outputs = fake_finished_run(workdir, configfile)
        print(f"{configfile.name}: faked {outputs:,} outputs in {workdir}, with metadata")
        floor = Path(one_rule)
        (floor / "Snakefile").write_text('rule done:\n    output: "done"\n    shell: "touch done"\n')
        (floor / "done").touch()
        workflow, startup = [], []
        for _ in range(args.repeats):  # interleaved, so that both see the same machine load
            seconds, output = timed([*SNAKEMAKE, *workflow_args(workdir, configfile), "-n"], REPO)
            if "Nothing to be done" not in output:
                sys.exit(f"the faked run is not up to date:\n{output[-2000:]}")
            workflow.append(seconds)
            startup.append(timed([*SNAKEMAKE, "--cores", "1", "-n"], floor)[0])
        report("snakemake -n, up to date", workflow)
        report("snakemake -n, one-rule workflow", startup)


if __name__ == "__main__":
    main()
