"""Qn.signature: does each graded function take the handout's parameters? Worth 0 points unless the rubric says.

The grader calls a function with another signature by parameter name (grader/adapt/calls.py), so a deviation
costs nothing elsewhere; a course that wants students to keep the handout's API gives these checks points.
"""

from __future__ import annotations

from grader.adapt.calls import handout_signature
from grader.results import CheckResult


def check_signatures(question: str, student, functions: tuple[str, ...]) -> CheckResult:
    """Passed when every function the question grades is defined with the handout's signature."""
    check_id = f"{question}.signature"
    title = "the handout's signature: " + ", ".join(functions)
    plans, problems = getattr(student, "plans", {}), getattr(student, "problem_for", lambda f: None)
    found = []
    for function in functions:
        if not student.has(function):
            found.append(f"{function} is not defined (expected {handout_signature(function)})")
        elif problems(function):
            found.append(problems(function))
        elif function in plans and not plans[function].conforms:
            found += list(plans[function].deviations)
    if not found:
        message = "Defined as the handout has it: " + "; ".join(handout_signature(f) for f in functions) + "."
        return CheckResult(check_id, title, "passed", 1.0, 1.0, message)
    return CheckResult(check_id, title, "failed", 0.0, 1.0, "; ".join(found) + ".",
                       details={"deviations": found})
