"""The homework's questions, one module each (helpers.py, q1_*.py, q2_*.py, ...): each defines `QUESTION`.

This package is the only place that enumerates them: rubric validation, grading, the self-check, the signature
checks and the report's figures all read `QUESTIONS`. Adding a question is one new module here (and its section
in the rubric).
"""

from __future__ import annotations

import importlib
import pkgutil

from grader.questions.base import Context, Question, guarded


def _discover() -> tuple[Question, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            module = importlib.import_module(f"{__name__}.{info.name}")
            question = getattr(module, "QUESTION", None)
            if isinstance(question, Question):
                found.append(question)
    return tuple(sorted(found, key=lambda q: (q.order, q.id)))


QUESTIONS: tuple[Question, ...] = _discover()


def known_checks() -> dict[str, tuple[str, ...]]:
    """Question id -> its check ids, in report order."""
    return {q.id: q.checks for q in QUESTIONS}


def settings_classes() -> dict[str, type]:
    """Question id -> the settings dataclass its rubric section fills."""
    return {q.id: q.settings for q in QUESTIONS}


def question(qid: str) -> Question:
    """The question with this id (KeyError naming the known ones otherwise)."""
    for q in QUESTIONS:
        if q.id == qid:
            return q
    raise KeyError(f"unknown question {qid!r} (known: {', '.join(q.id for q in QUESTIONS)})")


__all__ = ["QUESTIONS", "Context", "Question", "guarded", "known_checks", "question", "settings_classes"]
