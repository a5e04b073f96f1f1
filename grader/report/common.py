"""What every renderer shares: a result as its JSON dict, strict-JSON values, numbers and words for people."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

# How each RunError kind reads in a report.
ERROR_WORDS = {
    "exception": "Your code raised an exception",
    "timeout": "Your code ran out of time",
    "memory": "Your code ran out of memory",
    "output_limit": "Your code printed too much (the output was cut)",
    "exit": "Your code stopped the program early (exit)",
    "crash": "The Python process running your code crashed",
    "not_gradable": "Your submission could not be graded",
    "grader": "The grader itself failed on this submission (not your fault)",
}

STATUS_WORDS = {"passed": "passed", "failed": "failed", "error": "error", "skipped": "skipped"}


def as_dict(result: Any) -> dict[str, Any]:
    """A SubmissionResult, or its `to_dict()` JSON (possibly partial, e.g. a batch's grader-failure dict)."""
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    data.setdefault("submission", "")
    data.setdefault("path", "")
    data.setdefault("questions", [])
    for key in ("gradients", "training", "figures"):
        data[key] = data.get(key) or {}
    for key in ("errors", "adaptations", "protections"):
        data[key] = list(data.get(key) or [])
    for key in ("rubric", "rubric_sha256", "grader_version", "graded_at"):
        data[key] = data.get(key) or ""
    data["duration_s"] = float(data.get("duration_s") or 0.0)
    data["questions"] = [_question(q) for q in data["questions"]]
    data["score"] = float(data.get("score", sum(q["score"] for q in data["questions"])) or 0.0)
    data["max_score"] = float(data.get("max_score", sum(q["max_score"] for q in data["questions"])) or 0.0)
    return data


def _question(q: Mapping[str, Any]) -> dict[str, Any]:
    """A question dict with scores filled in and every check complete."""
    q = dict(q)
    q["checks"] = [_check(c) for c in q.get("checks", [])]
    q.setdefault("id", "")
    q.setdefault("title", q["id"])
    q["score"] = float(q.get("score", sum(c["score"] for c in q["checks"])))
    q["max_score"] = float(q.get("max_score", sum(c["max_score"] for c in q["checks"])))
    return q


def _check(c: Mapping[str, Any]) -> dict[str, Any]:
    """A check dict with the optional fields present."""
    c = dict(c)
    c.setdefault("id", "")
    c.setdefault("title", c["id"])
    c.setdefault("status", "error")
    c["score"] = float(c.get("score") or 0.0)
    c["max_score"] = float(c.get("max_score") or 0.0)
    c.setdefault("message", "")
    c["visibility"] = c.get("visibility") or "visible"
    c["details"] = dict(c.get("details") or {})
    c.setdefault("traceback", None)
    return c


def jsonable(value: Any) -> Any:
    """Strict JSON: numpy values to Python, tuples to lists, NaN/inf to the strings "nan"/"inf"/"-inf"."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def points(x: float) -> str:
    """A score for people: 3, 2.5, 0.333."""
    return f"{x:.3g}" if abs(x - round(x)) > 1e-9 else str(int(round(x)))


def number(value: Any) -> str:
    """A detail value for a table cell: floats to 4 significant digits, long lists shortened."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(number(v) for v in value[:8])
        if len(value) > 8:
            return f"[{shown}, …] ({len(value)} values)"
        return f"[{shown}]"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={number(v)}" for k, v in value.items())
    return str(value)


def question_sort_key(question_id: str) -> tuple[int, int, str]:
    """Q1 < Q2 < ... < Q10 < anything without a number (e.g. 'helpers')."""
    digits = re.search(r"\d+", question_id)
    return (0, int(digits.group()), question_id) if digits else (1, 0, question_id)


def question_number(question_id: str, position: int) -> str:
    """The number Gradescope shows for a question: the digits of 'Q3', else its 1-based position."""
    digits = re.search(r"\d+", question_id)
    return digits.group() if digits else str(position + 1)


def is_not_gradable(data: Mapping[str, Any]) -> bool:
    """True when the submission could not be graded at all (syntax error, no code, grader failure)."""
    kinds = {e.get("kind") for e in data.get("errors", [])}
    if "not_gradable" in kinds:
        return True
    return "grader" in kinds and not any(q["checks"] for q in data["questions"])


def diagnoses(data: Mapping[str, Any]) -> list[str]:
    """Each distinct diagnosis sentence in one result: from gradient verdicts and checks' details."""
    found: list[str] = []
    for verdict in data.get("gradients", {}).values():
        if isinstance(verdict, Mapping) and verdict.get("diagnosis"):
            found.append(str(verdict["diagnosis"]))
    for q in data["questions"]:
        for c in q["checks"]:
            for key in ("diagnosis", "mistake"):
                if c["details"].get(key):
                    found.append(str(c["details"][key]))
                    break
    return list(dict.fromkeys(found))
