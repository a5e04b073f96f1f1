"""HTML reports (jinja2, autoescaped, self-contained): one per submission, and an index for the class.

Both render SubmissionResult objects or their `to_dict()` JSON; they compute nothing but layout and counts.

A check's `details` are shown as a compact table of its numbers (a list of dicts, e.g. Q2's `cases`, as a
nested table), except these keys, which have a place of their own: "diagnosis" (a sentence under the
message), "mistake" (a mistake id, counted in the index), "hint" (a sentence for the student). A Q3 tensor
check's details (`verdict`, a GradientVerdict dict, and per-digit errors) become one line of numbers: the
verdict's diagnosis is already in the message and the per-tensor table below the checks. Gradient verdicts
(`SubmissionResult.gradients`) become that per-tensor table in Q3. Hidden checks (visibility other than
"visible") appear only when staff=True; the student view says how many there are and what they are worth.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

import grader.report.figures as figures
from grader.gradients import TENSOR_NAMES
from grader.report.class_index import index_context
from grader.report.common import (
    ERROR_WORDS,
    as_dict,
    check_state,
    chip_state,
    costs,
    is_not_gradable,
    number,
    points,
    points_lost,
    question_heading,
)

TEMPLATES = Path(__file__).parent / "templates"
OWN_PLACE_DETAILS = ("diagnosis", "mistake", "hint")  # "mistake": the id, also in CheckResult.mistake_id
# Keys of a Q3 tensor check's details that its one line of numbers shows (the rest still get rows).
PROSE_LENGTH = 20  # a detail string longer than this gets a line of its own, not a cell of the grid
GRADIENT_LINE_DETAILS = ("verdict", "rel_error_per_digit", "rel_error_per_digit_small_rate", "labels")


def figure_question() -> dict[str, str]:
    """Figure group -> the question that draws it (grader/questions/: Question.figures)."""
    from grader.questions import QUESTIONS

    return {group: q.id for q in QUESTIONS for group in q.figures}


GRADIENT_QUESTION = "Q3"


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment: autoescape always on, undefined names are errors (one per process, so each
    template is compiled once, not once per report)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["points"] = points
    env.filters["number"] = number
    return env


def render_report(result: Any, *, staff: bool) -> str:
    """One submission's report; staff=False leaves out hidden checks, grader internals and protections."""
    data = as_dict(result)
    return environment().get_template("report.html.j2").render(**report_context(data, staff=staff))


def render_index(
    results: Iterable[Any], *, links: Mapping[str, str] | None = None, title: str = "Grading summary"
) -> str:
    """The class index: sortable table, histogram of totals, each check's pass rate, common mistakes.

    `links` maps a submission's path (or, failing that, its name) to its report's relative URL;
    by default "<submission>.html".
    """
    data = [as_dict(r) for r in results]
    return environment().get_template("index.html.j2").render(**index_context(data, links or {}, title))


def report_context(data: dict[str, Any], *, staff: bool) -> dict[str, Any]:
    """Everything report.html.j2 shows, already decided (which checks, which pictures, which words)."""
    pictures = figures.submission_figures(data["figures"])
    questions = [question_view(q, staff) for q in data["questions"]]
    placed, owners = set(), figure_question()
    for q in questions:
        groups = [g for g, qid in owners.items() if qid == q["id"]]
        q["pictures"] = [p for g in groups for p in pictures.get(g, [])]
        placed.update(groups)
        q["gradients"] = gradient_rows(data["gradients"], q["checks"]) if q["id"] == GRADIENT_QUESTION else []
        q["first_wrong"] = first_wrong_rows(data["gradients"], q["checks"]) if q["id"] == GRADIENT_QUESTION else []
    has_gradient_question = any(q["id"] == GRADIENT_QUESTION for q in questions)
    visible_score = sum(q["shown_score"] for q in questions)
    visible_max = sum(q["shown_max"] for q in questions)
    withheld = data.get("hidden_checks") or {}  # a visible-only run's count of the checks it left out
    hidden = sum(q["hidden_count"] for q in questions) + int(withheld.get("count", 0))
    hidden_points = sum(q["hidden_points"] for q in questions) + float(withheld.get("points", 0.0))
    partial_view = not staff and hidden
    return {
        "staff": staff,
        "r": data,
        "questions": questions,
        "costs": costs({"questions": questions}),
        "not_gradable": is_not_gradable(data),
        "score": visible_score if partial_view else data["score"],
        "max_score": visible_max if partial_view else data["max_score"],
        "hidden_count": hidden,
        "hidden_points": hidden_points,
        "errors": [error_view(e, staff) for e in data["errors"]],
        "other_pictures": [p for g, ps in pictures.items() if g not in placed for p in ps],
        "loose_gradients": [] if has_gradient_question else gradient_rows(data["gradients"], []),
        "sha_short": data["rubric_sha256"][:12],
    }


def question_view(q: Mapping[str, Any], staff: bool) -> dict[str, Any]:
    """A question's checks as shown to this reader, with the score they add up to."""
    shown = [c for c in q["checks"] if staff or c["visibility"] == "visible"]
    hidden = [c for c in q["checks"] if c not in shown]
    checks = [check_view(q["id"], c) for c in shown]
    shown_score, shown_max = sum(c["score"] for c in shown), sum(c["max_score"] for c in shown)
    score, max_score = (q["score"], q["max_score"]) if staff else (shown_score, shown_max)
    return {
        "id": q["id"],
        "title": q["title"],
        "heading": question_heading(q["id"], q["title"]),
        "score": q["score"],
        "max_score": q["max_score"],
        "shown_score": shown_score,
        "shown_max": shown_max,
        "chip": chip_state(score, max_score),
        "checks": checks,
        "open_checks": [c for c in checks if c["state"] != "passed"],
        "passed_checks": [c for c in checks if c["state"] == "passed"],
        "hidden_count": len(hidden),
        "hidden_points": sum(c["max_score"] for c in hidden),
    }


def check_view(question_id: str, c: Mapping[str, Any]) -> dict[str, Any]:
    """One check: state, points, message, diagnosis, the numbers behind the verdict, the traceback."""
    details = c["details"]
    line = gradient_line(details)
    shown = {k: v for k, v in details.items()
             if k not in OWN_PLACE_DETAILS and not (line and k in GRADIENT_LINE_DETAILS)}
    return {
        **c,
        "anchor": f"check-{question_id}-{c['id']}",
        "state": check_state(c),
        "lost": points_lost(c),
        "diagnosis": details.get("diagnosis"),
        "hint": details.get("hint"),
        "numbers": line,
        "rows": detail_rows(shown),
    }


def detail_rows(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the details table, each {"key", "text", "table", "items"} with one of the last three set:
    a list of dicts becomes a table, a list of sentences (or one long sentence) a list, anything else text."""
    rows = []
    for key, value in flatten(details).items():
        row: dict[str, Any] = {"key": key, "text": None, "table": None, "items": None}
        if is_records(value):
            row["table"] = records_table(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            row["items"] = list(value)
        elif isinstance(value, str) and len(value) > PROSE_LENGTH:
            row["items"] = [value]
        else:
            row["text"] = number(value)
        rows.append(row)
    return rows


def is_records(value: Any) -> bool:
    """True for a non-empty list of dicts (e.g. Q2's cases: [{case, got, expected, rel_error, ok}, ...])."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, Mapping) for v in value)


def records_table(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A list of dicts as {"columns", "rows": [{"cells", "ok"}]}: every key seen, in first-seen order;
    "ok" (True/False/None) colours the row."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [{"cells": [number(r.get(k)) for k in columns], "ok": r.get("ok")} for r in records]
    return {"columns": [k.replace("_", " ") for k in columns], "rows": rows}


def gradient_line(details: Mapping[str, Any]) -> str | None:
    """A Q3 tensor check's numbers on one line: e, the worst entry, signs, ratio, e per probe digit; None
    for details without a GradientVerdict dict under "verdict"."""
    v = details.get("verdict")
    if not isinstance(v, Mapping) or "rel_error" not in v:
        return None
    parts = [f"e = {number(v.get('rel_error'))}"]
    if v.get("worst_index") is not None:
        index = ", ".join(str(i) for i in v["worst_index"])
        parts.append(f"worst entry ({index}): yours {number(v.get('worst_student'))}, "
                     f"f.d. {number(v.get('worst_expected'))}")
    if v.get("sign_agreement") is not None:
        parts.append(f"signs agree {_percent(v['sign_agreement'])}")
    if v.get("ratio") is not None:
        parts.append(f"ratio yours/f.d. {number(v['ratio'])}")
    per_digit = details.get("rel_error_per_digit")
    if isinstance(per_digit, (list, tuple)) and per_digit:
        labels = details.get("labels")
        if not isinstance(labels, (list, tuple)) or len(labels) != len(per_digit):
            labels = [f"#{i + 1}" for i in range(len(per_digit))]  # shown as "a #1"
        pairs = zip(labels, per_digit, strict=True)
        parts.append("e per probe digit: " + ", ".join(f"a {label}: {number(e)}" for label, e in pairs))
    against = "against the handout's network: " if "graded_against" in details else ""
    return against + " · ".join(parts)


def flatten(details: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys ({"W1": {"rel_error": 1}} -> {"W1.rel_error": 1}); lists stay."""
    flat: dict[str, Any] = {}
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def gradient_rows(gradients: Mapping[str, Any], checks: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-tensor gradient verdicts in W1, b1, ... b3 order (any other names after); the likely mistake is the
    fix of the tensor's own check (Q3.<tensor>) when it recognised one, else the verdict's own note."""
    fixes = {c["id"]: c.get("fix") for c in checks}
    names = [t for t in TENSOR_NAMES if t in gradients] + [t for t in gradients if t not in TENSOR_NAMES]
    rows = []
    for name in names:
        v = gradients[name]
        if not isinstance(v, Mapping):
            continue
        rows.append({
            "tensor": v.get("tensor", name),
            "ok": bool(v.get("ok")),
            "verdict": v.get("verdict", ""),
            "rel_error": number(v.get("rel_error")),
            "worst": _worst(v),
            "sign_agreement": _percent(v.get("sign_agreement")),
            "ratio": number(v.get("ratio")),
            "diagnosis": fixes.get(f"{GRADIENT_QUESTION}.{name}") or v.get("diagnosis"),
        })
    return rows


def first_wrong_rows(gradients: Mapping[str, Any], checks: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Where the student's step first goes wrong (grader/pinpoint.py): one row per distinct (quantity, line), in
    computation order, with the tensors it explains and the fix of the first of their checks that has one."""
    from grader.pinpoint import MEANING, QUANTITIES

    fixes = {c["id"]: c.get("fix") for c in checks}
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for name in [t for t in TENSOR_NAMES if t in gradients]:
        found = gradients[name].get("first_wrong") if isinstance(gradients[name], Mapping) else None
        if not isinstance(found, Mapping) or found.get("quantity") not in QUANTITIES:
            continue
        key = (found["quantity"], found.get("file"), found.get("line"), found.get("variable"))
        row = rows.setdefault(key, {**found, "meaning": MEANING[found["quantity"]], "tensors": [], "fix": None,
                                    "rel_error": number(found.get("rel_error"))})
        row["tensors"].append(name)
        row["fix"] = row["fix"] or fixes.get(f"{GRADIENT_QUESTION}.{name}")
    return sorted(rows.values(), key=lambda r: (QUANTITIES.index(r["quantity"]), r.get("line") or 0))


def _percent(share: Any) -> str:
    """0.973 -> '97.3%'; anything else -> '—'."""
    return f"{100 * share:.1f}%" if isinstance(share, (int, float)) and not isinstance(share, bool) else "—"


def _worst(v: Mapping[str, Any]) -> str:
    """'[12, 3]: 0.0123 vs 0.0456' for the entry where the student's gradient is furthest off."""
    if v.get("worst_index") is None:
        return "—"
    return f"{list(v['worst_index'])}: {number(v.get('worst_student'))} vs {number(v.get('worst_expected'))}"


def error_view(e: Mapping[str, Any], staff: bool) -> dict[str, Any]:
    """A run error in plain words; the grader's own tracebacks are for staff only."""
    kind, where, message = e.get("kind", "crash"), str(e.get("where", "")), str(e.get("message", ""))
    return {
        "kind": kind,
        "headline": ERROR_WORDS.get(kind, kind),
        "where": "" if message.startswith(where) else where,  # "lines 2-3 was still running ...": said once
        "message": message,
        "traceback": e.get("traceback") if staff or kind != "grader" else None,
    }
