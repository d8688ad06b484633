"""Glue between a Snakemake `script:` job and the package: logging and user-facing errors."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from cdsynth.errors import CdsynthError


@contextlib.contextmanager
def output_to(path: str) -> Iterator[None]:
    """Send this process's stdout and stderr, C libraries' included, to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_job(smk: Any, job: Callable[[], Any]) -> None:
    """Run `job` with output in the rule's log; a CdsynthError is also shown on the console, briefly."""
    log = smk.log[0] if smk.log else os.devnull
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    try:
        with output_to(log):
            try:
                job()
            except CdsynthError as err:
                print(f"error: {err}", file=sys.stderr)
                raise
    except CdsynthError as err:
        print(f"cdsynth error in rule {smk.rule}: {err}", file=sys.stderr)
        sys.exit(1)
