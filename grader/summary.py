"""The terminal summary `grade` prints: per question, with the failing checks' messages."""

from __future__ import annotations

import shutil
import signal
import textwrap
from typing import Any

from grader.session import RunOutcome

MARKS = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


def _points(x: float) -> str:
    return f"{x:.4g}"


def _wrap(text: str, indent: str) -> str:
    width = max(60, min(110, shutil.get_terminal_size((100, 20)).columns))
    return "\n".join(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=" " * len(indent))
                     for line in text.splitlines() if line.strip())


def submission_lines(result: dict[str, Any], *, detailed: bool, self_check: bool) -> list[str]:
    """Lines describing one result: header, per-question scores, failing checks, run errors."""
    head = f"{result.get('submission')}: {_points(result.get('score', 0))} / {_points(result.get('max_score', 0))}"
    if not detailed:
        scores = "  ".join(f"{q['id']} {_points(q['score'])}" for q in result.get("questions", []) if q["max_score"])
        kinds = sorted({e["kind"] for e in result.get("errors", [])})
        retried = [f"  (note: {result['retried']})"] if result.get("retried") else []
        return [f"{head:<40} {scores}" + (f"  ({', '.join(kinds)})" if kinds else ""), *retried]
    lines = [head + ("   (visible checks only)" if self_check else "")]
    for q in result.get("questions", []):
        if not q.get("checks"):
            continue
        lines.append(f"  {q['title']}: {_points(q['score'])} / {_points(q['max_score'])}")
        if not detailed:
            continue
        said: set[str] = set()
        for c in q["checks"]:
            if (c["status"] == "passed" and not self_check) or (c["status"] == "failed" and not c["max_score"]):
                continue  # 0-point failures are informational: the reports show them
            lines.append(f"    [{MARKS.get(c['status'], c['status'])}] {c['title']} "
                         f"({_points(c['score'])}/{_points(c['max_score'])})")
            if c["status"] == "passed":
                continue
            if c["message"] in said:
                lines.append("        (the same reason as above)")
                continue
            said.add(c["message"])
            lines.append(_wrap(c["message"], "        "))
            if c.get("traceback"):
                tail = c["traceback"].strip().splitlines()[-4:]
                lines += ["        | " + line for line in tail]
    errors = result.get("errors", [])
    if errors and detailed:
        lines.append("  While running your code:")
        for e in errors[:10]:
            lines.append(_wrap(f"{e['where']}: {e['message']}", "    - "))
        if len(errors) > 10:
            lines.append(f"    ... and {len(errors) - 10} more (see the report)")
    if result.get("retried"):
        lines.append(f"  (note: {result['retried']})")
    if detailed and result.get("adaptations"):
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


def print_summary(outcome: RunOutcome, *, self_check: bool = False) -> None:
    """Print every result (in detail when there are few) and where the reports are."""
    detailed = len(outcome.results) <= 3
    for result in outcome.results:
        print("\n".join(submission_lines(result, detailed=detailed, self_check=self_check)))
        if detailed:
            print()
    scores = [r.get("score", 0) for r in outcome.results]
    mean = f", mean {sum(scores) / len(scores):.1f}" if len(scores) > 1 else ""
    print(f"{len(scores)} submission{'s' * (len(scores) != 1)}{mean}, "
          f"{outcome.regraded} graded now, {outcome.up_to_date} up to date")
    if self_check:
        print("Visible checks only: the final grade may include hidden checks.")
    if outcome.data_source:
        print(f"MNIST: {outcome.data_source}")
    if outcome.out_dir is not None:
        where = outcome.out_dir
        print(f"Reports: {where}/" + ("" if detailed else "  (index.html, grades.csv)"))
