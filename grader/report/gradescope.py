"""Gradescope's results.json from a SubmissionResult, following the documented autograder specification.

https://gradescope-autograders.readthedocs.io/en/latest/specs/ : top-level score, execution_time (seconds),
output, output_format, stdout_visibility, extra_data, tests[]; each test has name, number, score, max_score,
status ("passed"/"failed"), output, output_format, visibility. All text is sent as "text" (never "html"/"md"),
so nothing a student wrote can be rendered as markup on Gradescope.
"""

from __future__ import annotations

import math
from typing import Any

from grader.report.common import (
    ERROR_WORDS,
    as_dict,
    check_state,
    costs,
    is_not_gradable,
    jsonable,
    points,
    question_heading,
    question_numbers,
)

TEXT = "text"


def results_json(result: Any) -> dict[str, Any]:
    """The results.json object for one submission (a not-gradable one still gets a valid file, score 0)."""
    data = as_dict(result)
    numbers = question_numbers([q["id"] for q in data["questions"]])
    tests = [
        gradescope_test(q, c, f"{number}.{ci + 1}")
        for q, number in zip(data["questions"], numbers, strict=True)
        for ci, c in enumerate(q["checks"])
    ]
    if is_not_gradable(data) or not tests:
        tests.append(not_gradable_test(data))
    return jsonable({
        "score": data["score"] if any_staff_adjustment(data) or not is_not_gradable(data) else 0.0,
        "execution_time": int(math.ceil(data["duration_s"])),
        "output": summary(data),
        "output_format": TEXT,
        "test_output_format": TEXT,
        "test_name_format": TEXT,
        "stdout_visibility": "hidden",
        "extra_data": {
            "submission": data["submission"],
            "rubric": data["rubric"],
            "rubric_sha256": data["rubric_sha256"],
            "grader_version": data["grader_version"],
            "graded_at": data["graded_at"],
            "max_score": data["max_score"],
        },
        "tests": tests,
    })


def gradescope_test(q: dict[str, Any], c: dict[str, Any], number: str) -> dict[str, Any]:
    """One check as one Gradescope test: 'Q3 · W1 gradient', number '3.1', its points, status and output."""
    test = {
        "name": f"{q['id']} · {c['title']}",
        "name_format": TEXT,
        "number": number,
        "score": c["score"],
        "max_score": c["max_score"],
        "output": check_output(c),
        "output_format": TEXT,
        "visibility": c["visibility"],
        "extra_data": {"check": c["id"], "grader_status": c["status"]},
    }
    status = test_status(c)
    if status is not None:
        test["status"] = status
    return test


def test_status(c: dict[str, Any]) -> str | None:
    """'passed' or 'failed'; an informational (0-point) skipped check leaves it to Gradescope."""
    if check_state(c) == "passed":
        return "passed"
    if c["status"] == "skipped" and c["max_score"] == 0:
        return None
    return "failed"


def check_output(c: dict[str, Any]) -> str:
    """The check's message, then its diagnosis, hint and the student's traceback, as plain text."""
    parts = [c["message"]] if c["message"] else []
    if c["status"] == "skipped":
        parts.insert(0, "Skipped.")
    if c.get("staff"):
        staff = c["staff"]
        parts.insert(0, f"Adjusted by staff ({staff.get('by') or 'staff'}): {staff.get('comment', '')} "
                        f"(the grader gave {points(staff.get('graded_score', 0.0))}).")
    if c["details"].get("diagnosis"):
        parts.append(f"Likely mistake: {c['details']['diagnosis']}")
    if c["details"].get("hint"):
        parts.append(f"Hint: {c['details']['hint']}")
    if c.get("traceback"):
        parts.append("Your code raised:\n" + c["traceback"])
    return "\n\n".join(parts)


def any_staff_adjustment(data: dict[str, Any]) -> bool:
    """True when staff overrode some check of this submission."""
    return any(c.get("staff") for q in data["questions"] for c in q["checks"])


def not_gradable_test(data: dict[str, Any]) -> dict[str, Any]:
    """A single failing test that explains why nothing could be graded."""
    reasons = [_error_line(e) for e in data["errors"]] or ["No checks ran."]
    return {
        "name": "Submission · could be graded",
        "name_format": TEXT,
        "number": "0.1",
        "score": 0.0,
        "max_score": 0.0,
        "status": "failed",
        "output": "This submission could not be graded, so it scores 0.\n\n" + "\n".join(reasons),
        "output_format": TEXT,
        "visibility": "visible",
    }


def summary(data: dict[str, Any]) -> str:
    """The top-level output: total, per-question scores, and what went wrong while running, in plain words."""
    if is_not_gradable(data):
        lines = ["This submission could not be graded: score 0."]
    else:
        lines = [f"Total: {points(data['score'])} / {points(data['max_score'])}"]
        for q in data["questions"]:
            lines.append(f"{question_heading(q['id'], q['title'])}: {points(q['score'])} / {points(q['max_score'])}")
        lines += cost_lines(data)
    lines += [_error_line(e) for e in data["errors"]]
    if data["grader_version"] or data["rubric"]:
        lines.append(f"Graded by grader {data['grader_version'] or '?'} with rubric {data['rubric'] or '?'}.")
    return "\n".join(lines)


def cost_lines(data: dict[str, Any]) -> list[str]:
    """'What cost you points' for the visible checks (Gradescope shows this output to students): the points
    lost and the sentence to act on."""
    lines = [f"  -{points(k['lost'])} {k['question']} {k['title']} ({k['state']}): {k['sentence']}"
             for k in costs(data, visible_only=True)]
    return ["", "What cost you points:", *lines, ""] if lines else []


def _error_line(e: dict[str, Any]) -> str:
    """'Your code ran out of time (cell 4): stopped after 60 s'."""
    kind, message = e.get("kind", ""), str(e.get("message", ""))
    where = f" ({e['where']})" if e.get("where") and not message.startswith(str(e["where"])) else ""
    return f"{ERROR_WORDS.get(kind, kind)}{where}: {message}"
