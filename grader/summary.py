"""The terminal summary `grade` prints: per question, with the failing checks' messages."""

from __future__ import annotations

import shutil
import signal
import textwrap
from typing import Any

from grader.report.common import as_dict, check_state, costs, printable
from grader.session import RunOutcome

MARKS = {"passed": "ok", "partial": "PARTIAL", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


def _points(x: float) -> str:
    return f"{x:.4g}"


def _wrap(text: str, indent: str, first: str | None = None) -> str:
    width = max(60, min(110, shutil.get_terminal_size((100, 20)).columns))
    first = indent if first is None else first
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(textwrap.fill(line, width, initial_indent=first if i == 0 else indent,
                                    subsequent_indent=" " * len(indent)) for i, line in enumerate(lines))


def cost_lines(result: dict[str, Any]) -> list[str]:
    """'What cost you points': each check that lost points (repeats merged), the points lost and what to do."""
    lines = []
    for k in costs(result):
        state = "" if k["state"] == "failed" else f", {k['state']}"
        staff = " adjusted by staff;" if k["staff"] else ""
        lines.append(f"  -{_points(k['lost']):<6}{k['question']} {k['title']} "
                     f"({_points(k['score'])}/{_points(k['max_score'])}{state}){staff}")
        lines.append(_wrap(k["sentence"], " " * 10))
    return ["What cost you points:", *lines] if lines else []


def _check_lines(c: dict[str, Any], said: set[str]) -> list[str]:
    """A check that did not pass: its mark, points, message (once: repeats say so), traceback tail."""
    lines = [f"    [{MARKS.get(check_state(c), c['status'])}] {c['title']} "
             f"({_points(c['score'])}/{_points(c['max_score'])})"]
    if c.get("staff"):
        staff = c["staff"]
        lines.append(_wrap(f"adjusted by staff ({staff.get('by') or 'staff'}): {staff.get('comment', '')}",
                           " " * 8))
    if c["message"] in said:
        return [*lines, "        (the same reason as above)"]
    said.add(c["message"])
    lines.append(_wrap(c["message"], "        "))
    if c.get("traceback"):
        lines += ["        | " + line for line in c["traceback"].strip().splitlines()[-4:]]
    return lines


def _error_text(e: dict[str, Any]) -> str:
    """'cell 4: NameError ...', without repeating the place when the message already starts with it."""
    where, message = str(e.get("where", "")), str(e.get("message", ""))
    return message if not where or message.startswith(where) else f"{where}: {message}"


def submission_lines(result: dict[str, Any], *, detailed: bool, self_check: bool) -> list[str]:
    """Lines describing one result: header, what cost points, per-question scores, failing checks, problems."""
    result = as_dict(result)
    head = f"{result['submission']}: {_points(result['score'])} / {_points(result['max_score'])}"
    problems = "; ".join(result["problems"])
    if not detailed:
        scores = "  ".join(f"{q['id']} {_points(q['score'])}" for q in result["questions"] if q["max_score"])
        retried = [f"  (note: {result['retried']})"] if result.get("retried") else []
        return [f"{head:<40} {scores}" + (f"  ({problems})" if problems else ""), *retried]
    lines = [head + ("   (visible checks only)" if self_check else "")]
    if problems:
        lines.append(f"Problems: {problems}")
    lines += cost_lines(result)
    for q in result["questions"]:
        if not q["checks"]:
            continue
        passed = [c for c in q["checks"] if check_state(c) == "passed"]
        folded = f"   ({len(passed)} passed)" if passed else ""
        lines.append(f"  {q['title']}: {_points(q['score'])} / {_points(q['max_score'])}{folded}")
        said: set[str] = set()
        for c in q["checks"]:
            if check_state(c) == "passed" or (c["status"] == "failed" and not c["max_score"]):
                continue  # passed checks are folded; 0-point failures are informational: the reports show them
            lines += _check_lines(c, said)
    errors = result["errors"]
    if errors:
        lines.append("  While running your code:")
        for e in errors[:10]:
            lines.append(_wrap(_error_text(e), "    - "))
        if len(errors) > 10:
            lines.append(f"    ... and {len(errors) - 10} more (see the report)")
    if result.get("retried"):
        lines.append(f"  (note: {result['retried']})")
    if result["adaptations"]:
        lines.append("  The grader adapted to your code:")
        lines += [_wrap(a, "    - ") for a in result["adaptations"]]
    return lines


def _names(names: list[str] | tuple[str, ...], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def problem_lines(outcome: RunOutcome) -> list[str]:
    """What went wrong with the run itself (not with the students' code), each line saying what to do."""
    from grader.report.writer import is_grader_failure

    lines = []
    if outcome.interrupted:
        done = len(outcome.results) - len(outcome.not_graded)
        lines.append(f"interrupted by {signal.Signals(outcome.interrupted).name}: {done} of "
                     f"{len(outcome.results)} submissions done, not graded: {_names(outcome.not_graded)} (the "
                     "running ones were stopped and their sandboxes removed). Run the same command again to grade "
                     "the rest: finished reports are up to date and skipped.")
    if outcome.write_problem:
        count = len(outcome.unwritten)
        what = f" ({count} report set{'s' * (count != 1)} not written: {_names(list(outcome.unwritten))})" \
            if count else " (index.html and grades.csv not written)"
        lines.append(f"{outcome.write_problem}{what}. Nothing was left half-written and earlier reports are "
                     "untouched: free space or fix the folder, then run the same command again (what was written "
                     "is skipped as up to date).")
    failed = [r.get("submission", "") for r in outcome.results
              if is_grader_failure(r) and r.get("submission") not in outcome.not_graded]
    if outcome.kept:
        lines.append(f"the grader itself failed on {_names(outcome.kept)}: their earlier reports were kept, not "
                     "replaced by the failure.")
    rest = [n for n in failed if n not in outcome.kept]
    if rest:
        lines.append(f"the grader itself failed on {_names(rest)} (not the students' fault): see their reports, "
                     "and run the same command again to retry them.")
    return lines


def _print(text: str) -> None:
    """Print text from a grading (students' messages, file names, output) without its terminal controls."""
    print(printable(text))


def print_summary(outcome: RunOutcome, *, self_check: bool = False) -> None:
    """Print every result (in detail when there are few) and where the reports are."""
    detailed = len(outcome.results) <= 3
    for result in outcome.results:
        _print("\n".join(submission_lines(result, detailed=detailed, self_check=self_check)))
        if detailed:
            print()
    scores = [r.get("score", 0) for r in outcome.results]
    mean = f", mean {sum(scores) / len(scores):.1f}" if len(scores) > 1 else ""
    _print(f"{len(scores)} submission{'s' * (len(scores) != 1)}{mean}, "
           f"{outcome.regraded} graded now, {outcome.up_to_date} up to date")
    if self_check:
        withheld = next((r["hidden_checks"] for r in outcome.results if r.get("hidden_checks")), None)
        count = f"{withheld['count']:g} hidden check{'s' * (withheld['count'] != 1)} worth " \
                f"{_points(withheld['points'])} point{'s' * (withheld['points'] != 1)}" if withheld else "hidden checks"
        _print(f"Visible checks only: the final grade may include {count}.")
    if outcome.data_source:
        _print(f"MNIST: {outcome.data_source}")
    if outcome.out_dir is not None:
        where = outcome.out_dir
        _print(f"Reports: {where}/" + ("" if detailed else "  (index.html, grades.csv)"))
