"""`grade --doctor`: say which sandbox runs here and what the machine lacks, start a real one and list the
protections its child verified."""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.sandbox import Sandbox, SandboxFailure, isolation, protections
from grader.submission import load_submission

PROBE = "import numpy as np\nweights, biases = [np.zeros((2, 2))] * 3, [np.zeros(2)] * 3\n"


def doctor(rubric_path: str | None = None) -> int:
    """0 when a sandboxed child starts and runs a cell here, 1 (with the reason) when it cannot; the limits
    are the rubric's (the shipped one by default), as grading uses them."""
    from grader.rubric import RubricError, load_rubric

    try:
        rubric = load_rubric(rubric_path)
    except RubricError as exc:
        print(f"grade: bad rubric: {exc}")
        return 2
    limits = rubric.limits
    try:
        engine = isolation.choose_engine(None)
    except SandboxFailure as exc:
        engine = f"unavailable ({exc})"
    print(f"Sandbox here: {isolation.ENGINE_NAMES.get(engine, engine)}")
    missing = isolation.lacking()
    print("Lacking here: " + ("nothing, every protection is available" if not missing else ""))
    for line in missing:
        print(f"  - {line}")
    print(f"Protections a sandbox would use on this machine (limits from {rubric.path}):")
    for line in protections(memory_mb=limits.memory_mb, file_mb=limits.file_mb, nproc=limits.nproc):
        print(f"  - {line}")
    with tempfile.TemporaryDirectory(prefix="grade-doctor-") as tmp:
        path = Path(tmp) / "doctor_probe.py"
        path.write_text(PROBE)
        try:
            with Sandbox(load_submission(path), limits=limits) as box:
                run = box.run_cells()
                verified = box.protections()
        except SandboxFailure as exc:
            print(f"FAILED: a sandboxed child could not start: {exc}")
            return 1
    print("A sandboxed child started and ran a cell" + (" with errors:" if run.errors else "."))
    for error in run.errors:
        print(f"  - {error.where}: {error.message}")
    print("Verified in the child:")
    for line in verified:
        print(f"  - {line}")
    return 0 if not run.errors else 1
