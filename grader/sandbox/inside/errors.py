"""A student's exception as the grader reads it: kind, message, and the traceback of the student's frames."""

import os
import traceback

TRACEBACK_CHARS = 20_000
# Computed at import, before student code runs: the check below uses only str methods, which it cannot patch.
OWN_PREFIX = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_own_frame(filename):
    """True for a frame of this package (the child's own code), which a student's traceback leaves out."""
    return filename.startswith(OWN_PREFIX)


def _without_own_frames(summary, seen):
    """summary (a TracebackException) and the exceptions chained to it, without this package's frames: the
    grader's wrappers around a student's function (recording, watching) sit between the student's own frames."""
    if summary is None or id(summary) in seen:
        return
    seen.add(id(summary))
    summary.stack = traceback.StackSummary.from_list([f for f in summary.stack if not is_own_frame(f.filename)])
    for chained in (summary.__cause__, summary.__context__, *(getattr(summary, "exceptions", None) or ())):
        _without_own_frames(chained, seen)


def student_traceback(exc):
    """The traceback without this package's frames: student file names and line numbers."""
    summary = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    _without_own_frames(summary, set())
    text = "".join(summary.format())
    half = TRACEBACK_CHARS // 2
    return text if len(text) <= TRACEBACK_CHARS else text[:half] + "\n...\n" + text[-half:]


def error_of(exc):
    """{"kind": "exit" | "memory" | "exception", "message", "traceback"} of an exception from student code."""
    if isinstance(exc, SystemExit):
        kind, message = "exit", f"the code called sys.exit({exc.code!r})"
    elif isinstance(exc, MemoryError):
        kind, message = "memory", "MemoryError: ran out of memory (the sandbox limits the address space)"
    else:
        kind = "exception"
        try:
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        except BaseException:
            message = type(exc).__name__
    return {"kind": kind, "message": message[:2000], "traceback": student_traceback(exc)}
