"""Grader stand-in inside the sandbox: a `from grader import check; check()` cell left in a handed-in notebook.

The self-check is for a student's own kernel; while grading, the grader runs the checks itself, so check()
only says so (and returns None). It never reads anything and never counts as a problem.
"""

MESSAGE = "check(): skipped here: the checks are run by the grader on your handed-in file."


def check(*args, **kwargs):
    """Print that the checks are run by the grader; do nothing else."""
    print(MESSAGE)
