"""Hostile: the child's own bounds on output and tracebacks live in the student's process, so this lifts them
(sys.stdout's limit, the runner's TRACEBACK_CHARS) and each call prints 3 MB and raises with a 3 MB message.
Graded as it was (50 MB reports, 16 tracebacks of 3 MB each) this made every report of the submission 50 MB; the
grader keeps at most its own bounds of each: the call's output limit and 20,000 characters of traceback."""
import sys

sys.modules["inside.errors"].TRACEBACK_CHARS = 10**9
BIG = "x" * (3 * 2**20)


def noisy():
    sys.stdout.limit = sys.stderr.limit = 10**9
    print("y" * (3 * 2**20))
    sys.stderr.write("z" * (3 * 2**20))
    raise ValueError(BIG)


def quiet():
    sys.stdout.limit = 10**9
    print("w" * (3 * 2**20))
    return "answered"


noisy_at_top = "no"
print("v" * (3 * 2**20))
