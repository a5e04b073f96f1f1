"""The class index: the table of submissions, pass rates per check, the most common mistakes by id and where
the class's steps first go wrong; computed here, rendered by report/html.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import grader.report.figures as figures
from grader.gradients import TENSOR_NAMES
from grader.problems import EMPTY_FILE
from grader.report.common import (
    is_not_gradable,
    mistakes,
    question_sort_key,
)


def index_context(data: list[dict[str, Any]], links: Mapping[str, str], title: str) -> dict[str, Any]:
    """The class table, the histogram, pass rates per check and the most common mistakes."""
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
            "problems": d["problems"],
        })
    totals = [d["score"] for d in data]
    return {
        "title": title,
        "qids": qids,
        "rows": rows,
        "count": len(data),
        "graded": sum(not r["not_gradable"] for r in rows),
        "ran": sum(ran(d) for d in data),
        "mean": sum(totals) / len(totals) if totals else 0.0,
        "max_score": max_score,
        "histogram": figures._safely(figures.score_histogram, totals, max_score) if totals else None,
        "pass_rates": pass_rates(data),
        "mistakes": common_mistakes(data),
        "first_wrong": first_wrong_counts(data),
        "data_sources": sorted({d["data_source"] for d in data if d["data_source"]}),
    }


def ran(d: Mapping[str, Any]) -> bool:
    """True when the submission's code ran: it was gradable and not an empty file."""
    return not is_not_gradable(d) and EMPTY_FILE not in d["problems"]


def pass_rates(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each check seen in the class: how many submissions passed it, out of the submissions that ran (see
    `ran`) and ran the check (a skipped check did not run); checks in the order a graded submission lists them."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for d in sorted(data, key=is_not_gradable):  # a graded submission's check order and titles first
        for q in d["questions"]:
            for c in q["checks"]:
                row = table.setdefault((q["id"], c["id"]), {
                    "question": q["id"], "check": c["id"], "title": c["title"],
                    "visibility": c["visibility"], "passed": 0, "total": 0,
                })
                if c["status"] == "skipped" or not ran(d):
                    continue
                row["total"] += 1
                row["passed"] += c["status"] == "passed"
    rows = sorted(table.values(), key=lambda r: question_sort_key(r["question"]))  # stable: check order kept
    for r in rows:
        r["rate"] = r["passed"] / r["total"] if r["total"] else 0.0
    return rows


def common_mistakes(data: list[dict[str, Any]], limit: int = 15) -> list[dict[str, Any]]:
    """Mistakes by how many submissions made them, counted once per submission by mistake id (see
    common.check_mistake): the most common fix sentence (it holds no per-student numbers), the tensors or checks
    affected, a few names; the share is of the submissions that ran."""
    groups: dict[str, dict[str, Any]] = {}
    for d in data:
        who = d["path"] or d["submission"]
        for m in mistakes(d):
            g = groups.setdefault(m["key"], {"question": m["question"], "sentences": Counter(), "parts": {},
                                             "who": {}})
            g["sentences"][m["sentence"]] += 1
            g["parts"][m["part"]] = None
            g["who"].setdefault(who, d["submission"])
    n = max(sum(ran(d) for d in data), 1)
    rows = [{
        "key": key,
        "question": g["question"],
        "sentence": g["sentences"].most_common(1)[0][0],
        "parts": sorted(g["parts"], key=_part_order),
        "count": len(g["who"]),
        "share": len(g["who"]) / n,
        "examples": sorted(g["who"].values())[:5],
    } for key, g in groups.items()]
    rows.sort(key=lambda r: (-r["count"], question_sort_key(r["question"]), r["key"]))
    return rows[:limit]


def _part_order(part: str) -> tuple[int, str]:
    """W1, b1, W2, ... b3 first, in network order; any check title after."""
    return (TENSOR_NAMES.index(part), "") if part in TENSOR_NAMES else (len(TENSOR_NAMES), part)


def first_wrong_counts(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Across the class: how many submissions' steps first go wrong at each quantity (the earliest one a
    submission's report names), in computation order."""
    from grader.pinpoint import MEANING, QUANTITIES

    counts: dict[str, list[str]] = {}
    for d in data:
        found = [v.get("first_wrong") for v in d["gradients"].values() if isinstance(v, Mapping)]
        named = sorted({f["quantity"] for f in found if isinstance(f, Mapping) and f.get("quantity") in QUANTITIES},
                       key=QUANTITIES.index)
        if named:
            counts.setdefault(named[0], []).append(d["submission"])
    total = max(sum(ran(d) for d in data), 1)
    return [{"quantity": q, "meaning": MEANING[q], "count": len(counts[q]), "share": len(counts[q]) / total,
             "examples": sorted(counts[q])[:3]} for q in QUANTITIES if q in counts]
