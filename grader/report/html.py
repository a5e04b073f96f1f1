"""HTML reports (jinja2, autoescaped, self-contained): one per submission, and an index for the class.

Both render SubmissionResult objects or their `to_dict()` JSON; they compute nothing but layout and counts.

A check's `details` are shown as a compact table of its numbers, except these keys, which have a place of
their own: "diagnosis" (a sentence under the message), "mistake" (a mistake id, counted in the index),
"hint" (a sentence for the student). Gradient verdicts (`SubmissionResult.gradients`) become a per-tensor
table in Q3. Hidden checks (visibility other than "visible") appear only when staff=True; the student view
says how many there are and what they are worth.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from grader.report import figures
from grader.report.common import (
    ERROR_WORDS,
    as_dict,
    diagnoses,
    is_not_gradable,
    number,
    points,
    question_sort_key,
)

TEMPLATES = Path(__file__).parent / "templates"
OWN_PLACE_DETAILS = ("diagnosis", "mistake", "hint")
FIGURE_QUESTION = {"init": "Q1", "gradients": "Q3", "training": "Q4"}
GRADIENT_QUESTION = "Q3"
TENSOR_ORDER = ("W1", "b1", "W2", "b2", "W3", "b3")


def environment() -> jinja2.Environment:
    """The template environment: autoescape always on, undefined names are errors."""
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
    """The class index: sortable table, histogram of totals, each check's pass rate, common diagnoses.

    `links` maps a submission's path (or, failing that, its name) to its report's relative URL;
    by default "<submission>.html".
    """
    data = [as_dict(r) for r in results]
    return environment().get_template("index.html.j2").render(**index_context(data, links or {}, title))


def report_context(data: dict[str, Any], *, staff: bool) -> dict[str, Any]:
    """Everything report.html.j2 shows, already decided (which checks, which pictures, which words)."""
    pictures = figures.submission_figures(data["figures"])
    questions = [question_view(q, staff) for q in data["questions"]]
    placed = set()
    for q in questions:
        groups = [g for g, qid in FIGURE_QUESTION.items() if qid == q["id"]]
        q["pictures"] = [p for g in groups for p in pictures.get(g, [])]
        placed.update(groups)
        q["gradients"] = gradient_rows(data["gradients"]) if q["id"] == GRADIENT_QUESTION else []
    has_gradient_question = any(q["id"] == GRADIENT_QUESTION for q in questions)
    visible_score = sum(q["shown_score"] for q in questions)
    visible_max = sum(q["shown_max"] for q in questions)
    hidden = sum(q["hidden_count"] for q in questions)
    return {
        "staff": staff,
        "r": data,
        "questions": questions,
        "not_gradable": is_not_gradable(data),
        "score": data["score"] if staff or not hidden else visible_score,
        "max_score": data["max_score"] if staff or not hidden else visible_max,
        "hidden_count": hidden,
        "hidden_points": sum(q["hidden_points"] for q in questions),
        "errors": [error_view(e, staff) for e in data["errors"]],
        "other_pictures": [p for g, ps in pictures.items() if g not in placed for p in ps],
        "loose_gradients": [] if has_gradient_question else gradient_rows(data["gradients"]),
        "sha_short": data["rubric_sha256"][:12],
    }


def question_view(q: Mapping[str, Any], staff: bool) -> dict[str, Any]:
    """A question's checks as shown to this reader, with the score they add up to."""
    shown = [c for c in q["checks"] if staff or c["visibility"] == "visible"]
    hidden = [c for c in q["checks"] if c not in shown]
    return {
        "id": q["id"],
        "title": q["title"],
        "score": q["score"],
        "max_score": q["max_score"],
        "shown_score": sum(c["score"] for c in shown),
        "shown_max": sum(c["max_score"] for c in shown),
        "checks": [check_view(c) for c in shown],
        "hidden_count": len(hidden),
        "hidden_points": sum(c["max_score"] for c in hidden),
    }


def check_view(c: Mapping[str, Any]) -> dict[str, Any]:
    """One check: status, points, message, diagnosis, the numbers behind the verdict, the traceback."""
    details = c["details"]
    return {
        **c,
        "diagnosis": details.get("diagnosis"),
        "mistake": details.get("mistake"),
        "hint": details.get("hint"),
        "rows": [
            (k, number(v)) for k, v in flatten(details).items() if k.split(".")[0] not in OWN_PLACE_DETAILS
        ],
    }


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


def gradient_rows(gradients: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-tensor gradient verdicts in W1, b1, ... b3 order (any other names after)."""
    names = [t for t in TENSOR_ORDER if t in gradients] + [t for t in gradients if t not in TENSOR_ORDER]
    rows = []
    for name in names:
        v = gradients[name]
        if not isinstance(v, Mapping):
            continue
        rows.append({
            "tensor": v.get("tensor", name),
            "ok": bool(v.get("ok")),
            "verdict": v.get("verdict", ""),
            "rel_error": number(v.get("rel_error")) if v.get("rel_error") is not None else "–",
            "worst": _worst(v),
            "sign_agreement": _percent(v.get("sign_agreement")),
            "ratio": number(v.get("ratio")) if v.get("ratio") is not None else "–",
            "diagnosis": v.get("diagnosis"),
        })
    return rows


def _percent(share: Any) -> str:
    """0.973 -> '97.3%'; anything else -> '–'."""
    return f"{100 * share:.1f}%" if isinstance(share, (int, float)) else "–"


def _worst(v: Mapping[str, Any]) -> str:
    """'[12, 3]: 0.0123 vs 0.0456' for the entry where the student's gradient is furthest off."""
    if v.get("worst_index") is None:
        return "–"
    return f"{list(v['worst_index'])}: {number(v.get('worst_student'))} vs {number(v.get('worst_expected'))}"


def error_view(e: Mapping[str, Any], staff: bool) -> dict[str, Any]:
    """A run error in plain words; the grader's own tracebacks are for staff only."""
    kind = e.get("kind", "crash")
    return {
        "kind": kind,
        "headline": ERROR_WORDS.get(kind, kind),
        "where": e.get("where", ""),
        "message": e.get("message", ""),
        "traceback": e.get("traceback") if staff or kind != "grader" else None,
    }


def index_context(data: list[dict[str, Any]], links: Mapping[str, str], title: str) -> dict[str, Any]:
    """The class table, the histogram, pass rates per check and the most common diagnoses."""
    data = sorted(data, key=lambda d: d["submission"])
    qids = sorted({q["id"] for d in data for q in d["questions"]}, key=question_sort_key)
    max_score = max((d["max_score"] for d in data), default=0.0)
    rows = []
    for d in data:
        by_q = {q["id"]: q for q in d["questions"]}
        rows.append({
            "name": d["submission"],
            "href": links.get(d["path"]) or links.get(d["submission"]) or f"{d['submission']}.html",
            "path": d["path"],
            "cells": [by_q.get(qid) for qid in qids],
            "score": d["score"],
            "max_score": max_score if is_not_gradable(d) else d["max_score"],
            "not_gradable": is_not_gradable(d),
            "errors": Counter(e.get("kind", "?") for e in d["errors"]),
        })
    totals = [d["score"] for d in data]
    return {
        "title": title,
        "qids": qids,
        "rows": rows,
        "count": len(data),
        "graded": sum(not r["not_gradable"] for r in rows),
        "mean": sum(totals) / len(totals) if totals else 0.0,
        "max_score": max_score,
        "histogram": figures._safely(figures.score_histogram, totals, max_score) if totals else None,
        "pass_rates": pass_rates(data),
        "diagnoses": common_diagnoses(data),
    }


def pass_rates(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each check seen in the class: how many submissions passed it, out of those it ran on."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for d in data:
        for q in d["questions"]:
            for c in q["checks"]:
                row = table.setdefault((q["id"], c["id"]), {
                    "question": q["id"], "check": c["id"], "title": c["title"],
                    "visibility": c["visibility"], "passed": 0, "total": 0,
                })
                row["total"] += 1
                row["passed"] += c["status"] == "passed"
    rows = sorted(table.values(), key=lambda r: question_sort_key(r["question"]))  # stable: check order kept
    for r in rows:
        r["rate"] = r["passed"] / r["total"] if r["total"] else 0.0
    return rows


def common_diagnoses(data: list[dict[str, Any]], limit: int = 15) -> list[dict[str, Any]]:
    """Diagnosis sentences by how many submissions they describe, with a few of those submissions."""
    who: dict[str, list[str]] = {}
    for d in data:
        for sentence in diagnoses(d):
            who.setdefault(sentence, []).append(d["submission"])
    ranked = sorted(who.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
    n = max(len(data), 1)
    return [
        {"sentence": s, "count": len(names), "share": len(names) / n, "examples": names[:5]}
        for s, names in ranked
    ]
