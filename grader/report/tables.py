"""grades.csv: one row per submission, one column per question, the total; opens in any spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from grader.report.common import as_dict, is_not_gradable, question_sort_key

LEADING = ("submission", "path")
TRAILING = ("total", "max_score", "status", "problems")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def grade_columns(results: Iterable[dict[str, Any]]) -> list[str]:
    """submission, path, Q1..Qn (every question seen, in natural order), total, max_score, status, problems."""
    qids = sorted({q["id"] for d in results for q in d["questions"]}, key=question_sort_key)
    return [*LEADING, *qids, *TRAILING]


def grade_rows(results: Iterable[Any]) -> tuple[list[str], list[dict[str, str]]]:
    """The header and one row per submission, sorted by submission name; a missing question scores 0."""
    data = sorted((as_dict(r) for r in results), key=lambda d: (d["submission"], d["path"]))
    columns = grade_columns(data)
    rows = []
    for d in data:
        row = {c: "0" for c in columns}
        row.update({q["id"]: gradebook_points(q["score"]) for q in d["questions"]})
        row["submission"] = _cell(d["submission"])
        row["path"] = _cell(d["path"])
        row["total"] = gradebook_points(d["score"])
        row["max_score"] = gradebook_points(d["max_score"])
        row["status"] = "not gradable" if is_not_gradable(d) else "graded"
        row["problems"] = _cell("; ".join(d["problems"]))
        rows.append(row)
    return columns, rows


def gradebook_points(x: float) -> str:
    """A score for a gradebook: to the hundredth, without trailing zeros (61.3036 -> 61.3, 99.996 -> 100)."""
    text = f"{round(float(x), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (a name like '=HYPERLINK(...)' gets a leading quote)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def grades_csv(results: Iterable[Any]) -> str:
    """The whole grades.csv as text (RFC 4180 quoting, CRLF line ends as the csv module writes them)."""
    columns, rows = grade_rows(results)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
