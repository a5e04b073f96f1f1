"""A student's exception as the grader reads it: kind, message, and the traceback of the student's frames."""

import os
import traceback

TRACEBACK_CHARS = 20_000
# Computed at import, before student code runs: the check below uses only str methods, which it cannot patch.
OWN_PREFIX = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_own_frame(filename):
    """True for a frame of this package (the child's own code), which a student's traceback leaves out."""
    return filename.startswith(OWN_PREFIX)


def student_traceback(exc):
    """The traceback without this package's leading frames: student file names and line numbers."""
    tb = exc.__traceback__
    while tb is not None and is_own_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
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
