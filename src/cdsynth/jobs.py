"""Glue between a Snakemake `script:` job and the package: logging and user-facing errors."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from cdsynth.errors import CdsynthError


@contextlib.contextmanager
def output_to(path: str) -> Iterator[None]:
    """Send this process's stdout and stderr to `path`: C libraries' (file descriptors 1 and 2) and
    Python's, even where sys.stdout is not descriptor 1 (under a test runner, in a notebook)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_job(smk: Any, job: Callable[[], Any]) -> None:
    """Run `job` with its output in the rule's log; if it fails, exit 1 with a one-line cause on the console.

    Every failure is written to the log with its cause (a traceback for anything but a CdsynthError,
    whose message already names the problem and the fix): on a cluster the log is often all there is.
    """
    log = smk.log[0] if smk.log else os.devnull
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    try:
        with output_to(log):
            try:
                job()
            except CdsynthError as err:
                print(f"error: {err}", file=sys.stderr)
                raise
            except Exception:
                traceback.print_exc()
                raise
    except CdsynthError as err:
        print(f"cdsynth error in rule {smk.rule}: {err}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:
        print(f"rule {smk.rule} failed: {type(err).__name__}: {err} (traceback in {log})", file=sys.stderr)
        sys.exit(1)
