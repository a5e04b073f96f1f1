"""The hostile corpus (tests/hostile/): each submission runs to the end within its limits, gets the outcome
written in its docstring, and the grader survives it."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import grader
import reference
from grader.sandbox import Limits, Opaque, Sandbox
from grader.sandbox.isolation import is_root
from grader.submission import NotGradable, Submission, load_submission

HOSTILE = Path(__file__).parent / "hostile"
# Generous times where nothing should hang (a loaded machine must not turn work into a time-out), short ones
# where the submission hangs on purpose and the time-out is what is tested.
LIMITS = Limits(cell_timeout_s=60, call_timeout_s=60, total_timeout_s=300, memory_mb=1024, output_kb=4,
                file_mb=2, nproc=48)
HANGS = Limits(cell_timeout_s=1.5, call_timeout_s=1.5, total_timeout_s=120, memory_mb=1024, output_kb=4,
               file_mb=2, nproc=48)
needs_root = pytest.mark.skipif(not is_root(), reason="isolation (PID namespace, privilege drop) needs root")


def hostile(tmp_path: Path, name: str, **fill: str) -> Submission:
    """A corpus file with its __PLACEHOLDERS__ filled in, loaded from tmp_path."""
    text = (HOSTILE / name).read_text()
    for key, value in fill.items():
        text = text.replace(f"__{key}__", value)
    path = tmp_path / name
    path.write_text(text)
    sub = load_submission(path)
    assert isinstance(sub, Submission)
    return sub


def statuses(log) -> list[str]:
    return [o.status for o in log.outcomes]


def gone_within(text: str, seconds: float) -> bool:
    """True once no live process has `text` in its command line (the kernel reaps a killed namespace
    asynchronously: its last processes can linger for a moment after the kill)."""
    deadline = time.monotonic() + seconds
    while processes_with(text):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def processes_with(text: str) -> list[int]:
    """Pids whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry))
    return found


def test_infinite_loop_times_out_and_the_rest_is_graded(tmp_path):
    with Sandbox(hostile(tmp_path, "infinite_loop.py"), None, HANGS) as box:
        log = box.run_cells()
        assert box.call("after").value == "still graded"
        assert box.get(["x"]) == {"x": 1}  # replayed up to, not including, the loop
    assert statuses(log) == ["ok", "ok", "timeout", "ok"] and log.outcomes[2].error.where == "lines 3-4"


def test_loop_swallowing_interrupts_is_killed_from_outside(tmp_path):
    with Sandbox(hostile(tmp_path, "swallow_interrupt.py"), None, HANGS) as box:
        log = box.run_cells()
        after = box.call("after")
    assert statuses(log)[-2:] == ["timeout", "ok"] and after.value == "still graded"


@needs_root
def test_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind(tmp_path):
    with Sandbox(hostile(tmp_path, "fork_bomb.py"), None, LIMITS) as box:
        log = box.run_cells()
        forked = box.call("after").value
        marker = str(box._base)
        assert processes_with(marker)  # the bomb's children are alive until the sandbox closes
    fork = log.outcomes[4]
    assert fork.status == "exception" and "BlockingIOError" in fork.error.message
    assert 0 < forked < LIMITS.nproc
    assert gone_within(marker, seconds=5)


def test_memory_hogs_get_memory_errors_and_the_run_goes_on(tmp_path):
    with Sandbox(hostile(tmp_path, "memory_hog.py"), None, LIMITS) as box:
        log = box.run_cells()
        after = box.call("after")
    assert statuses(log) == ["ok", "ok", "memory", "ok", "memory", "ok"]
    assert "MemoryError" in log.outcomes[2].error.message and after.value == "still graded"


def test_output_flood_is_bounded_and_fd_writes_stop_at_the_file_limit(tmp_path):
    with Sandbox(hostile(tmp_path, "output_flood.py"), None, LIMITS) as box:
        log = box.run_cells()
        loud = box.call("loud")
        log_file = box._base / "child-output.log"
        assert log_file.stat().st_size <= LIMITS.file_mb * 2**20
    printed, warned, fd_flood = log.outcomes[3], log.outcomes[4], log.outcomes[5]
    assert printed.status == "ok" and len(printed.stdout) < 4 * 1024 + 200
    assert "more characters of stdout were dropped" in printed.stdout
    assert warned.status == "ok" and "more characters of stderr were dropped" in warned.stderr
    assert fd_flood.status == "exception" and "File too large" in fd_flood.error.message
    assert loud.value == 7 and "dropped" in loud.stdout and len(loud.stdout) < 4 * 1024 + 200


@needs_root
def test_killing_the_parent_does_nothing_to_the_grader(tmp_path):
    with Sandbox(hostile(tmp_path, "kill_parent.py"), None, LIMITS) as box:
        log = box.run_cells()
        attempts = box.get(["attempts"])["attempts"]
        after = box.call("after")
    assert "timeout" not in statuses(log) and after.value == "still graded"
    assert ["grader", "ProcessLookupError"] in [list(a) for a in attempts]
    os.kill(os.getpid(), 0)  # still here


@needs_root
def test_fake_result_files_cannot_be_written_and_printing_changes_nothing(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "existing.json").write_text("{}")
    with Sandbox(hostile(tmp_path, "fake_results.py", REPORTS=str(reports)), None, LIMITS,
                 hide=[reports]) as box:
        log = box.run_cells()
        written = box.get(["written"])["written"]
    assert written == []
    assert sorted(p.name for p in reports.iterdir()) == ["existing.json"]
    assert (reports / "existing.json").read_text() == "{}"
    assert '"score": 100.0' in log.outcomes[5].stdout  # only ever seen as the student's own output


def test_patching_numpy_and_json_in_the_child_changes_nothing_in_the_grader(tmp_path):
    with Sandbox(hostile(tmp_path, "patch_numpy.py"), None, LIMITS) as box:
        log = box.run_cells()
        doubled = box.call("double", [np.arange(3)])
    assert set(statuses(log)) == {"ok"}
    np.testing.assert_array_equal(doubled.value, [0, 2, 4])
    assert not np.allclose(1.0, 2.0) and abs(-1) == 1


def test_breaking_a_builtin_the_runner_needs_is_a_recorded_crash_and_the_run_goes_on(tmp_path):
    with Sandbox(hostile(tmp_path, "patch_builtins.py"), None, LIMITS) as box:
        log = box.run_cells()
        after = box.call("after")
    assert statuses(log) == ["ok", "ok", "crash", "ok"] and "runner failed" in log.outcomes[2].error.message
    assert "cannot encode the answer" in log.outcomes[2].error.message
    assert after.value == "still graded"


def test_syntax_error_in_one_block_fails_only_that_block(tmp_path):
    with Sandbox(hostile(tmp_path, "syntax_error_block.py"), None, LIMITS) as box:
        log = box.run_cells()
        values = box.get(["after"])
    assert statuses(log) == ["ok", "ok", "ok", "exception", "ok"]
    assert "SyntaxError" in log.outcomes[3].error.message and "line 9" in log.outcomes[3].error.traceback
    assert values == {"after": 42}


@pytest.mark.parametrize("name", ["malformed_notebook.ipynb", "not_a_notebook.ipynb"])
def test_malformed_notebooks_are_not_gradable_and_never_run(name):
    assert isinstance(load_submission(HOSTILE / name), NotGradable)


def test_pickled_payloads_are_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled-in-the-grader"
    with Sandbox(hostile(tmp_path, "pickled_payload.py", MARKER=str(marker)), None, LIMITS) as box:
        log = box.run_cells()
        results = {name: box.call(name) for name in ("give_object", "give_object_array", "give_pickle_bytes",
                                                     "forge_exchange")}
        params = box.get(["weights", "biases"])
    assert set(statuses(log)) == {"ok"}
    assert not log.initialised and log.network == ()  # objects are no network: nothing is snapshotted
    assert isinstance(params["weights"], Opaque) and "Evil" in params["weights"].type_name
    for name in ("give_object", "give_object_array", "give_pickle_bytes"):
        assert results[name].ok and isinstance(results[name].value, Opaque), name
    np.testing.assert_array_equal(results["forge_exchange"].value, [0, 1, 2])  # forged lines were skipped
    assert not marker.exists()


def test_every_kind_of_exit_is_recorded_and_later_definitions_still_work(tmp_path):
    with Sandbox(hostile(tmp_path, "exits.py"), None, LIMITS) as box:
        log = box.run_cells()
        after = box.call("after")
        in_call = box.call("exits_in_call")
    assert statuses(log) == ["ok", "ok", "exit", "exit", "ok", "exit", "ok", "crash", "ok", "ok"]
    assert "sys.exit(0)" in log.outcomes[2].error.message and "status 0" in log.outcomes[5].error.message
    assert "SIGSEGV" in log.outcomes[7].error.message
    assert after.value == "still graded"
    assert in_call.error.kind == "exit" and "'bye'" in in_call.error.message


@needs_root
def test_setsid_grandchild_dies_with_the_time_out(tmp_path):
    token = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    with Sandbox(hostile(tmp_path, "setsid_grandchild.py", TOKEN=token), None, HANGS) as box:
        log = box.run_cells()
        assert gone_within(f"sleep {token}", seconds=5)  # killed with the hung cell, before close()
        after = box.call("after")
    assert statuses(log) == ["ok", "ok", "ok", "timeout", "ok"] and after.value == "still graded"


@needs_root
def test_the_graders_files_and_roots_files_are_invisible(tmp_path):
    project = Path(grader.__file__).resolve().parent.parent
    mnist = tmp_path / "mnist.npz"
    np.savez(mnist, x=np.arange(3))
    fill = {"REFERENCE": str(Path(reference.__file__).resolve().parent / "network.py"),
            "GRADER": str(Path(grader.__file__).resolve()), "PROJECT": str(project), "MNIST": str(mnist)}
    with Sandbox(hostile(tmp_path, "read_reference.py", **fill), None, LIMITS, hide=[mnist]) as box:
        log = box.run_cells()
        leaked = box.get(["leaked"])["leaked"]
    assert set(statuses(log)) == {"ok"} and leaked == []


def test_the_grader_process_is_unharmed_after_the_whole_corpus():
    assert signal.getsignal(signal.SIGINT) is not None and sys.modules["numpy"].allclose(1.0, 1.0)
