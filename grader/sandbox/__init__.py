"""Run a student's submission in a sandboxed child process and call its functions from the grader.

See docs/DESIGN.md ("Sandbox"). Student code only ever runs in the child (runner.py and inside/); values come
back as JSON and .npy files read without pickle.
"""

from grader.sandbox.isolation import SandboxFailure, protections
from grader.sandbox.records import (
    CallResult,
    CellOutcome,
    Limits,
    NetworkEntry,
    Param,
    RunLog,
    SandboxData,
    Symbol,
)
from grader.sandbox.session import Sandbox
from grader.sandbox.values import Fingerprint, Opaque, Ref

__all__ = ["CallResult", "CellOutcome", "Fingerprint", "Limits", "NetworkEntry", "Opaque", "Param", "Ref",
           "RunLog", "Sandbox", "SandboxData", "SandboxFailure", "Symbol", "protections"]
