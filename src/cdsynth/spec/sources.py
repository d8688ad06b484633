"""Where a corpus source's files are: paths and globs, and the cache names of downloads.

Torch-free and light: the Snakefile resolves every source file with these before any job runs, so that
a path matching nothing stops the workflow at once, naming it.
"""

from __future__ import annotations

import glob
import posixpath
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdsynth.errors import ConfigError, DataError
from cdsynth.spec.settings import bound_problems, setting

FORMATS = ("lines", "paragraphs", "blocks", "stories", "table")
UNITS = ("chunks", "documents")
# How `max_words` counts a unit's words (`cdsynth.data.corpus.WORD_COUNTS` implements each rule).
WORD_COUNT_RULES = ("whitespace", "space")

FIX_PATHS = (
    "Point the config at existing files (e.g. ../shared/data/corpus/...) or download them first "
    "(e.g. the BabyLM corpus from https://babylm.github.io)."
)
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    """One corpus source (`corpus.sources.<name>`), its files given as paths (`Source.resolved` expands a
    config entry's globs and downloads)."""

    format: str = setting(
        choices=FORMATS,
        help="lines, paragraphs, blocks (the authors' BabyLM documents), stories or table (Parquet / Arrow)",
    )
    train: tuple[str, ...] = setting(help="its train files")
    test: tuple[str, ...] = setting((), help="its own test files (none: the test split is cut from train)")
    units: str = setting("chunks", choices=UNITS, help="chunks of >= chunk_words words, or documents")
    max_words: int | None = setting(None, whole=True, minimum=1, also=(None,), help="cap on its words")
    max_words_count: str = setting(
        "whitespace", choices=WORD_COUNT_RULES, help="how max_words counts words (space: the authors')"
    )

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if not self.train:
            problems.append("train: lists no files; add at least one file")
        if problems:
            raise ConfigError("invalid corpus source:\n  " + "\n  ".join(problems))

    @classmethod
    def resolved(cls, entry: dict[str, Any]) -> Source:
        """A config entry with its files resolved (`source_files`), every other field as it is."""
        files = {split: tuple(source_files(entry.get(split, []))) for split in ("train", "test")}
        return cls(**entry | files)


def expand_paths(patterns: list[str], base: Path | None = None) -> list[Path]:
    """Expand paths and glob patterns (relative ones against `base`) into existing files.

    Matches are sorted within a pattern, the pattern order is kept and duplicates are dropped.
    """
    seen: set[Path] = set()
    result: list[Path] = []
    for pattern in patterns:
        full = Path(pattern).expanduser()
        if base is not None and not full.is_absolute():
            full = Path(base) / full
        if _GLOB_CHARS & set(str(pattern)):
            matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True))
        else:
            matches = [full] if full.exists() else []
        files = [m for m in matches if m.is_file()]
        if not files:
            what = "only directories" if matches else "nothing"
            raise DataError(f"{pattern!r} (resolved to {full}) matches {what}. {FIX_PATHS}")
        for path in files:
            if path not in seen:
                seen.add(path)
                result.append(path)
    return result


def local_name(url: str, member: str | None = None) -> str:
    """File name used in the cache: the basename of `member` if given, else of the URL path."""
    path = member if member is not None else urllib.parse.unquote(urllib.parse.urlparse(url).path)
    name = posixpath.basename(path.rstrip("/"))
    if not name:
        raise DataError(f"{url}: cannot derive a file name from it; use a URL that ends in a file name.")
    return name


DOWNLOADS = "resources/downloads"


def download_target(entry: dict) -> str:
    """Where a `{url, sha256, member}` source entry is cached."""
    return f"{DOWNLOADS}/{local_name(entry['url'], entry.get('member'))}"


def downloads(sources: dict[str, dict]) -> dict[str, dict]:
    """Cache path -> download entry of every source file to fetch; two downloads may not share a path."""
    found: dict[str, dict] = {}
    for name, source in sources.items():
        for split in ("train", "test"):
            for entry in source.get(split, []):
                if not isinstance(entry, dict):
                    continue
                target = download_target(entry)
                known = found.setdefault(target, entry)
                if (known["url"], known.get("member")) != (entry["url"], entry.get("member")):
                    raise ConfigError(
                        f"corpus.sources.{name}.{split}: {entry['url']} would be cached as {target}, "
                        "like another download; give them files with different names"
                    )
    return found


def source_files(entries: list) -> list[str]:
    """The files of a source's entries: downloads' cache paths, and paths and globs expanded."""
    files: list[str] = []
    for entry in entries:
        if isinstance(entry, dict):
            files.append(download_target(entry))
        else:
            files.extend(str(path) for path in expand_paths([entry]))
    return files
