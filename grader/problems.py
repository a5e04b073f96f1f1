"""Plain labels for what kept a submission from running, the same in the terminal, index.html and grades.csv.

A TA sorts by them: "empty file", "syntax error at line 2", "time-out in cell 4", "crash", "memory limit",
"not a submission". Syntax errors and empty files are read from the source in the parent (parsing, never
running it); everything else from the run's errors, one label per kind of problem, at its first place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from grader.results import RunError
from grader.submission import NotGradable, Submission

NOT_A_SUBMISSION = "not a submission"
EMPTY_FILE = "empty file"
# What each RunError kind is called; a place ("in cell 4", "at lines 3-4") follows where it has one.
KIND_LABELS = {
    "timeout": "time-out",
    "memory": "memory limit",
    "crash": "crash",
    "exit": "exit() called",
    "output_limit": "output limit",
    "exception": "error",
    "grader": "grader failure",
    "adaptation": "code not matched to the handout",
    "not_gradable": NOT_A_SUBMISSION,
}
PLACELESS = {"crash", "memory", "output_limit", "grader", "adaptation", "not_gradable"}


def place(where: str) -> str:
    """'cell 4' -> 'in cell 4'; 'lines 3-4' -> 'at lines 3-4'; 'call train_one_sample' -> 'in train_one_sample'."""
    where = where.strip()
    if where.startswith("call "):
        return f"in {where[5:]}"
    if where.startswith("line"):
        return f"at {where}"
    return f"in {where}" if where else ""


def syntax_errors(submission: Submission) -> list[tuple[str, str]]:
    """(cell label, 'syntax error at line N') for each cell that does not parse; N is the file's line for a
    script, the cell's line for a notebook."""
    found = []
    for cell in submission.cells:
        try:
            ast.parse(cell.source, submission.filename_for(cell))
        except SyntaxError as exc:
            line = (exc.lineno or 1) + (0 if submission.is_notebook else cell.first_line - 1)
            where = f"in {cell.label}, line {line}" if submission.is_notebook else f"at line {line}"
            found.append((cell.label, f"syntax error {where}"))
        except (ValueError, RecursionError, MemoryError):
            found.append((cell.label, f"syntax error {place(cell.label)}"))
    return found


def is_empty(submission: Submission) -> bool:
    """True when no cell holds a statement (only blank lines and comments)."""
    for cell in submission.cells:
        try:
            if ast.parse(cell.source).body:
                return False
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def error_labels(errors: Iterable[Mapping[str, Any] | RunError], skip_places: Sequence[str] = ()) -> list[str]:
    """One label per kind of run error, at its first place, '(+N more)' when it happened again."""
    firsts: dict[str, str] = {}
    counts: dict[str, int] = {}
    for e in errors:
        e = e.to_dict() if isinstance(e, RunError) else e
        kind, where = str(e.get("kind", "crash")), str(e.get("where", ""))
        if where in skip_places:
            continue
        counts[kind] = counts.get(kind, 0) + 1
        if kind not in firsts:
            label = KIND_LABELS.get(kind, kind.replace("_", " "))
            firsts[kind] = label if kind in PLACELESS else f"{label} {place(where)}".strip()
    return [firsts[k] + (f" (+{counts[k] - 1} more)" if counts[k] > 1 else "") for k in firsts]


def problem_labels(submission: Submission | NotGradable, errors: Sequence[RunError]) -> tuple[str, ...]:
    """The submission's problems in plain words, most basic first (see the module docstring)."""
    if isinstance(submission, NotGradable):
        return (NOT_A_SUBMISSION,)
    if is_empty(submission):
        return (EMPTY_FILE,)
    broken = syntax_errors(submission)
    labels = [label for _, label in broken]
    labels += error_labels(errors, skip_places=[cell for cell, _ in broken])
    return tuple(dict.fromkeys(labels))
