"""What every renderer shares: a result as its JSON dict, strict-JSON values, numbers and words for people."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.problems import error_labels

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
    "adaptation": "The grader could not match your code to the handout's",
}

TENSOR_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


def printable(text: str) -> str:
    """Text safe to print on a terminal: control and format characters other than newline and tab (escape
    sequences that clear the screen, set the clipboard or fake a line; bidi overrides; lone surrogates, which a
    UTF-8 terminal cannot take) shown as escapes (\\x1b)."""
    return "".join(c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs") else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in text)


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
    # JSON written before `problems` existed (or a batch's grader-failure dict): labelled from its errors alone
    data["problems"] = list(data.get("problems") or []) if "problems" in data else error_labels(data["errors"])
    for key in ("rubric", "rubric_sha256", "grader_version", "graded_at", "data_source"):
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
    c["mistake_id"] = c.get("mistake_id") or c["details"].get("mistake") or None  # JSON written before the field
    c.setdefault("fix", None)
    c.setdefault("staff", None)
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
    """A detail value for a table cell: floats to 4 significant digits, yes/no, — for None, long lists cut."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
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


def question_numbers(question_ids: list[str]) -> list[str]:
    """The numbers Gradescope shows for questions: the digits of 'Q3'; a question without digits (e.g.
    'helpers') gets the next number after the largest, so that no two questions share a number."""
    digits = [re.search(r"\d+", q) for q in question_ids]
    following = max((int(d.group()) for d in digits if d), default=0)
    numbers = []
    for d in digits:
        if d is None:
            following += 1
        numbers.append(d.group() if d else str(following))
    return numbers


def question_heading(question_id: str, title: str) -> str:
    """'Q1 Initialisation' for id 'Q1' and title 'Q1 Initialisation' or 'Initialisation'; the id alone
    without a title; the title alone for an id without a number ('helpers')."""
    if not title or title == question_id:
        return question_id
    if title.startswith(question_id) or not re.search(r"\d", question_id):
        return title
    return f"{question_id} {title}"


def is_not_gradable(data: Mapping[str, Any]) -> bool:
    """True when the submission could not be graded at all (syntax error, no code, grader failure)."""
    kinds = {e.get("kind") for e in data.get("errors", [])}
    if "not_gradable" in kinds:
        return True
    return "grader" in kinds and not any(q["checks"] for q in data["questions"])


def affected_part(check: Mapping[str, Any]) -> str:
    """What a check's mistake is in: its tensor (W1 .. b3) when it names one, else the check's title."""
    details = check["details"]
    verdict = details.get("verdict")
    if isinstance(verdict, Mapping) and verdict.get("tensor"):
        return str(verdict["tensor"])
    if isinstance(details.get("tensor"), str):
        return details["tensor"]
    named = [part for part in str(check["id"]).split(".") if part in TENSOR_NAMES]
    return named[0] if named else str(check["title"])


def check_mistake(question_id: str, check: Mapping[str, Any]) -> dict[str, str] | None:
    """The mistake a check that lost points recognised: its id (the same for every student who made it), the
    question, the one-sentence fix and the part it is in. None when it passed or recognised no mistake."""
    if check["status"] == "passed" or not check.get("mistake_id"):
        return None
    return {"key": str(check["mistake_id"]), "question": question_id,
            "sentence": str(check.get("fix") or check["title"]), "part": affected_part(check)}


def mistakes(data: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every mistake recognised in one result (see check_mistake), in question order."""
    found = []
    for q in data["questions"]:
        for c in q["checks"]:
            mistake = check_mistake(q["id"], c)
            if mistake is not None:
                found.append(mistake)
    return found


def first_sentence(text: str, limit: int = 240) -> str:
    """The text up to its first full stop followed by a capital, cut to `limit` characters (for a summary line)."""
    text = " ".join(text.split())
    for i in range(len(text) - 2):
        if text[i] == "." and text[i + 1] == " " and text[i + 2].isupper():
            text = text[: i + 1]
            break
    if len(text) <= limit:
        return text
    cut = text[:limit]
    stop = max(cut.rfind("; "), cut.rfind(": "))
    return (cut[:stop] if stop > limit // 2 else cut[: limit - 1].rstrip()) + " …"


def check_state(check: Mapping[str, Any]) -> str:
    """How a check reads to people: its status, or 'partial' when it failed yet earned some of its points; a
    check staff adjusted reads by its points (full: passed)."""
    if check.get("staff") and check["max_score"] > 0:
        return "passed" if check["score"] >= check["max_score"] else ("partial" if check["score"] > 0 else "failed")
    if check["status"] == "failed" and 0 < check["score"] < check["max_score"]:
        return "partial"
    return str(check["status"])


def points_lost(check: Mapping[str, Any]) -> float:
    """Points a check did not earn (0 for informational checks)."""
    return max(round(check["max_score"] - check["score"], 6), 0.0)


def chip_state(score: float, max_score: float) -> str:
    """A question's score as a colour: 'full', 'partial', 'zero', or '' for a 0-point question."""
    if max_score <= 0:
        return ""
    if score >= max_score - 1e-9:
        return "full"
    return "partial" if score > 0 else "zero"


def costs(data: Mapping[str, Any], *, visible_only: bool = False) -> list[dict[str, Any]]:
    """What cost points, in report order: each check that earned less than its maximum, with the points lost and
    the sentence to act on (its fix, else its message's first sentence). Neighbouring checks of one question
    with the same sentence (say, everything in Q2 when feed_forward_sample is not defined) make one entry."""
    rows: list[dict[str, Any]] = []
    for q in data["questions"]:
        for c in q["checks"]:
            if points_lost(c) <= 0 or (visible_only and c["visibility"] != "visible"):
                continue
            row = {"question": q["id"], "titles": [c["title"]], "anchor": f"check-{q['id']}-{c['id']}",
                   "state": check_state(c), "lost": points_lost(c), "score": c["score"],
                   "max_score": c["max_score"], "sentence": c.get("fix") or first_sentence(c["message"]),
                   "staff": bool(c.get("staff"))}
            last = rows[-1] if rows else None
            if last and (last["question"], last["sentence"]) == (row["question"], row["sentence"]):
                last["titles"].append(c["title"])
                last["state"] = last["state"] if last["state"] == row["state"] else "failed"
                for key in ("lost", "score", "max_score"):
                    last[key] = round(last[key] + row[key], 6)
                last["staff"] = last["staff"] or row["staff"]
            else:
                rows.append(row)
    for row in rows:
        row["title"] = ", ".join(row["titles"])
    return rows
