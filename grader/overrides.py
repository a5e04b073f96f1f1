"""Staff overrides: a YAML list of {submission, check, points, comment, by}, validated like the rubric.

They are applied at scoring time (grader/scoring.py: apply_overrides), so a re-grade keeps them, and each
submission's cache key includes the overrides that name it, so changing one re-grades that submission.

    - submission: kv2154          # the report name, the file name, or the file's path
      check: Q4.training          # a check id of the rubric
      points: 15                  # what the check now earns: 0 .. the rubric's points for it
      comment: Trained on the full data in office hours (71%).
      by: TA Jane Doe
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from grader.rubric import Rubric

FIELDS = ("submission", "check", "points", "comment", "by")
DEFAULT_NAME = "overrides.yaml"  # looked for beside a --rubric file (staff's folder), never in a class folder


class OverridesError(ValueError):
    """The overrides file is unusable; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class Override:
    """One staff decision: `check` of `submission` earns `points`, because `comment`, decided by `by`."""

    submission: str
    check: str
    points: float
    comment: str
    by: str

    def names(self, path: Path, stem: str) -> bool:
        """True when `submission` names this file: its report name, file name, stem or path."""
        wanted = self.submission.strip()
        return wanted in (stem, path.name, path.stem, str(path)) or _same_file(wanted, path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same_file(name: str, path: Path) -> bool:
    try:
        return Path(name).resolve() == path.resolve()
    except (OSError, ValueError):
        return False


def default_overrides_path(rubric_path: str | None) -> Path | None:
    """overrides.yaml beside an explicitly given rubric, if there is one."""
    if rubric_path is None:
        return None
    candidate = Path(rubric_path).with_name(DEFAULT_NAME)
    return candidate if candidate.is_file() else None


def load_overrides(path: str | Path, rubric: Rubric, submissions: Sequence[tuple[Path, str]]) -> tuple[Override, ...]:
    """Read and validate an overrides file against the rubric and the (path, report name) pairs being graded;
    raises OverridesError naming the entry and the problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_bytes())
    except OSError as exc:
        raise OverridesError(f"{path}: cannot read the overrides: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise OverridesError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(raw, dict) and set(raw) == {"overrides"}:
        raw = raw["overrides"]
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise OverridesError(f"{path}: expected a list of entries {{{', '.join(FIELDS)}}}, got {type(raw).__name__}")
    entries = tuple(_entry(item, f"{path}: entry {i + 1}", rubric, submissions) for i, item in enumerate(raw))
    seen: dict[tuple[str, str], int] = {}
    for i, e in enumerate(entries):
        key = (_target(e, submissions), e.check)
        if key in seen:
            raise OverridesError(f"{path}: entries {seen[key] + 1} and {i + 1} both override {e.check} of "
                                 f"{e.submission}")
        seen[key] = i
    return entries


def _entry(item: Any, where: str, rubric: Rubric, submissions: Sequence[tuple[Path, str]]) -> Override:
    """One validated entry."""
    if not isinstance(item, dict):
        raise OverridesError(f"{where}: expected a mapping with {', '.join(FIELDS)}, got {item!r}")
    unknown = sorted(map(str, set(item) - set(FIELDS)))
    missing = [f for f in FIELDS if f not in item]
    if unknown:
        raise OverridesError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(FIELDS)})")
    if missing:
        raise OverridesError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
    for key in ("submission", "check", "comment", "by"):
        if not isinstance(item[key], str) or not item[key].strip():
            raise OverridesError(f"{where}.{key}: expected non-empty text, got {item[key]!r}")
    entry = Override(item["submission"].strip(), item["check"].strip(), _points(item["points"], where),
                     item["comment"].strip(), item["by"].strip())
    rule = rubric.rule(entry.check)
    if rule is None:
        raise OverridesError(f"{where}.check: unknown check '{entry.check}' (not in the rubric {rubric.path})")
    if entry.points > rule.points:
        raise OverridesError(f"{where}.points: {entry.points:g} is more than {entry.check}'s {rule.points:g} points")
    if not any(entry.names(p, stem) for p, stem in submissions):
        graded = ", ".join(stem for _, stem in submissions[:8]) + (", …" if len(submissions) > 8 else "")
        raise OverridesError(f"{where}.submission: unknown submission '{entry.submission}' (graded here: {graded})")
    return entry


def _points(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise OverridesError(f"{where}.points: expected a finite number of points >= 0, got {value!r}")
    return float(value)


def _target(entry: Override, submissions: Sequence[tuple[Path, str]]) -> str:
    """The report name of the submission an entry names (the first that matches)."""
    return next(stem for p, stem in submissions if entry.names(p, stem))


def overrides_for(entries: Iterable[Override], path: Path, stem: str) -> tuple[Override, ...]:
    """The entries that name this submission."""
    return tuple(e for e in entries if e.names(path, stem))


def overrides_key(entries: Iterable[Override]) -> str:
    """A digest of the entries (empty when there are none), for a submission's cache key."""
    items = sorted(json.dumps(e.to_dict(), sort_keys=True) for e in entries)
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16] if items else ""
