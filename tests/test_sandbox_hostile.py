"""The hostile corpus (tests/hostile/): each submission runs to the end within its limits, gets the outcome
written in its docstring, and the grader survives it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import grader
import reference
from grader.sandbox import Limits, Opaque, Sandbox, bwrap, cgroups
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


def gone_within(text: str, seconds: float, except_for: str | None = None) -> bool:
    """True once no live process has `text` (and not `except_for`) in its command line (the kernel reaps a
    killed namespace asynchronously: its last processes can linger for a moment after the kill)."""
    deadline = time.monotonic() + seconds
    while set(processes_with(text)) - set(processes_with(except_for) if except_for else ()):
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
        assert os.fstat(box._log_fd).st_size <= LIMITS.file_mb * 2**20  # in memory, bounded, gone with the box
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


@needs_root
@pytest.mark.parametrize("engine", [pytest.param("bwrap", marks=pytest.mark.skipif(
    not bwrap.status(True).works, reason="bubblewrap cannot run here")), "namespaces"])
def test_the_graders_code_in_the_box_cannot_be_changed_and_a_restarted_child_loads_it_intact(tmp_path, engine):
    shipped = Path(grader.__file__).parent / "sandbox"
    with Sandbox(hostile(tmp_path, "tamper_runner.py"), None, HANGS, engine=engine) as box:
        log = box.run_cells()
        changed = box.get(["changed"])["changed"]
        hung = box.call("hang")
        after = box.call("after")  # a new child, replaying the cells, loads the box's code again
        base = box._base
        in_box = sorted(p.relative_to(base).as_posix() for p in (base / "inside").rglob("*"))
        planted = [p.name for p in base.iterdir() if p.name in ("planted.py", "__pycache__")]
        same = [(base / "runner.py").read_bytes() == (shipped / "runner.py").read_bytes()] + [
            (base / "inside" / n).read_bytes() == (shipped / "inside" / n).read_bytes()
            for n in os.listdir(shipped / "inside") if n.endswith(".py")]
    assert set(statuses(log)) == {"ok"} and changed == []
    assert hung.timed_out and after.value == "still graded"
    assert in_box == sorted(f"inside/{n}" for n in os.listdir(shipped / "inside") if n.endswith(".py"))
    assert all(same) and planted == []


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
        replayed = box.get(["mark"])["mark"]  # the grandchild the replay after the time-out started
        # the hung run's grandchild was killed with it, before close()
        assert gone_within(f"sleep {token}", seconds=5, except_for=f"sleep {replayed}")
        after = box.call("after")
    assert statuses(log) == ["ok", "ok", "ok", "ok", "timeout", "ok"] and after.value == "still graded"
    assert gone_within(f"sleep {token}", seconds=5)


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


# ----- deny by default (issue 11): each attack class against the bubblewrap view and whole-sandbox limits -----

ROOT = Path(__file__).resolve().parent.parent
needs_bwrap = pytest.mark.skipif(not bwrap.status(is_root()).works, reason=bwrap.status(is_root()).reason)
# The grading process's peak RSS whatever comes back, and what one request may add to it: a 16 MB line, at most
# 250,000 containers and 1,000,000 items parsed from it, 64 MB of arrays (measured: see the README).
PARENT_BUDGET_MB, PARENT_READ_MB = 450, 250


def token() -> str:
    return f"hostile{uuid.uuid4().hex[:12]}"


def run_python(code: str, *, private_srv: bool = False, env: dict[str, str] | None = None) -> dict:
    """Run `code` in a fresh grader process (this worktree's code), optionally in a private mount namespace
    with a tmpfs on /srv; -> the JSON it prints last."""
    command = [sys.executable, "-c", code]
    if private_srv:
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs course-server /srv && exec "$@"', "sh", *command]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


COURSE_SERVER = """
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, "tests")
from test_sandbox_hostile import LIMITS, hostile, statuses
from grader.sandbox import Sandbox

srv = Path("/srv/course")
for folder in ("solutions", "reports_hw1", "data", "submissions/kv2154"):
    (srv / folder).mkdir(parents=True)
(srv / "solutions/hw1_key.py").write_text("W1 = ...  # the solution key\\n")
(srv / "roster.csv").write_text("uni,name\\nkv2154,K V\\n")
(srv / "rubric_private.yaml").write_text("seed: 80085\\n")
(srv / "reports_hw1/ab123.json").write_text('{"score": 97}')
np.savez(srv / "data/mnist.npz", y_test=np.arange(10))  # the second copy, with every test label
np.savez(srv / "data/mnist_first.npz", y_test=np.arange(10))  # the one --mnist / MNIST_PATH names
submission = hostile(srv / "submissions/kv2154", "course_server.py", SRV=str(srv),
                     MNIST=str(srv / "data/mnist_first.npz"), TOKEN="hw1_key")
with Sandbox(submission, None, LIMITS, engine="bwrap") as box:
    log = box.run_cells()
    found = box.get(["leaked", "found"])
print(json.dumps({"statuses": statuses(log), **found}))
"""


@needs_root
@needs_bwrap
def test_a_course_servers_files_are_unreadable_and_unfindable():
    got = run_python(COURSE_SERVER, private_srv=True, env={"MNIST_PATH": "/srv/course/data/mnist_first.npz"})
    assert set(got["statuses"]) == {"ok"}
    assert got["leaked"] == [] and got["found"] == []


@needs_bwrap
def test_files_left_in_shared_places_die_with_the_child_and_never_reach_the_next(tmp_path):
    mark = token()
    with Sandbox(hostile(tmp_path, "leftovers.py", TOKEN=mark), None, HANGS) as box:
        log = box.run_cells()
        mine, seen = box.call("seen").value
        assert seen and all(mine in path for path in seen)  # the killed child's files went with it
    assert statuses(log)[-2:] == ["timeout", "ok"]
    with Sandbox(hostile(tmp_path, "leftovers_reader.py", TOKEN=mark), None, LIMITS) as box:
        box.run_cells()
        assert box.get(["seen"])["seen"] == []
    on_host = [f"{d}/{n}" for d in ("/run/lock", "/dev/shm", "/tmp", "/var/tmp", "/run", os.path.expanduser("~"))
               if os.path.isdir(d) for n in os.listdir(d) if mark in n]
    assert on_host == []


@needs_bwrap
def test_unix_sockets_outside_are_unreachable(tmp_path):
    mark = token()
    path = Path("/run" if os.access("/run", os.W_OK) else tmp_path) / f"{mark}.sock"
    listeners = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    try:
        listeners[0].bind(str(path))
        listeners[1].bind("\0" + mark)
        for listener in listeners:
            listener.listen(1)
        with Sandbox(hostile(tmp_path, "unix_socket.py", SOCKET=str(path), ABSTRACT=mark), None, LIMITS) as box:
            box.run_cells()
            assert box.get(["reached"])["reached"] == []
    finally:
        for listener in listeners:
            listener.close()
        path.unlink(missing_ok=True)


@needs_bwrap
def test_user_namespaces_cannot_be_created(tmp_path):
    with Sandbox(hostile(tmp_path, "user_namespace.py"), None, LIMITS) as box:
        log = box.run_cells()
        attempts = box.get(["attempts"])["attempts"]
    assert set(statuses(log)) == {"ok"}
    assert attempts == {"syscall": False, "unshare -U": False, "bwrap": False}


@needs_root
def test_a_fork_split_memory_hog_is_bounded_in_total(tmp_path):
    with Sandbox(hostile(tmp_path, "fork_hog.py"), None, LIMITS) as box:
        log = box.run_cells()
        after = box.call("after")
        group = box._cgroup
        peak = group.peak_memory() if group is not None else None
        outcome = box.get(["outcome"]).get("outcome")
    assert after.value == "still graded"
    if group is None:  # no cgroup here: one process of the whole limit, so the fork itself fails
        assert "BlockingIOError" in log.errors[0].message
        return
    assert set(statuses(log)) == {"ok"}
    assert peak is not None and peak <= LIMITS.memory_mb * 2**20
    assert outcome["killed"] >= 1  # 6 x 300 MB cannot all live in 1 GB: the kernel ended some


@needs_bwrap
def test_the_outbox_flood_stops_at_its_tmpfs_and_never_reaches_the_disk(tmp_path):
    with Sandbox(hostile(tmp_path, "outbox_flood.py"), None, LIMITS) as box:
        log = box.run_cells()
        stopped = box.get(["stopped"])["stopped"]
        after = box.call("after")
        assert os.listdir(box._base / "outbox") == []  # the host's folder under the tmpfs never got a byte
    assert set(statuses(log)) == {"ok"} and after.value == []  # the grader swept the 20,000 files
    sizes = {"/box/outbox": LIMITS.max_answer_mb, ".": LIMITS.file_mb, "/dev/shm": LIMITS.file_mb,
             "/tmp": LIMITS.file_mb}
    for folder, (written, why) in stopped.items():
        assert why == "No space left on device" and written <= sizes[folder] * 2**20, folder
    assert set(stopped) == set(sizes)


PARENT_MEMORY = """
import json, sys
sys.path.insert(0, "tests")
from test_sandbox_hostile import hostile, statuses
from pathlib import Path
from grader.sandbox import Limits, Sandbox


def status_mb(key):  # this image's own figures (ru_maxrss would count the forked pytest before exec)
    return int(Path("/proc/self/status").read_text().split(key + ":")[1].split()[0]) // 1024


limits = Limits(cell_timeout_s=60, call_timeout_s=60, total_timeout_s=300, memory_mb=1024, file_mb=16)
results, rss = {}, {}
for name, functions in (("forged_answers.py", ("too_long", "too_many_lists", "costliest_within_bounds")),
                        ("huge_return.py", ("many_arrays", "a_few_arrays", "after"))):
    with Sandbox(hostile(Path(sys.argv[1]), name), None, limits) as box:
        box.run_cells()
        rss.setdefault("before", status_mb("VmRSS"))
        for function in functions:
            result = box.call(function)
            value = result.value
            results[function] = [result.ok, result.error.message if result.error else None,
                                 len(value) if isinstance(value, list) else None]
            del result, value
            rss[function] = status_mb("VmHWM")
rss["peak"] = status_mb("VmHWM")
print(json.dumps({"results": results, "rss": rss}))
"""


@needs_bwrap
def test_forged_and_oversized_answers_are_errors_of_their_call_and_the_grader_stays_in_budget(tmp_path):
    got = run_python(PARENT_MEMORY.replace("sys.argv[1]", repr(str(tmp_path))))
    results, rss = got["results"], got["rss"]
    assert not results["too_long"][0] and "limit of 16 MB per line" in results["too_long"][1]
    assert not results["too_many_lists"][0] and "more than the grader reads" in results["too_many_lists"][1]
    assert results["costliest_within_bounds"] == [True, None, 990_000]
    assert not results["many_arrays"][0] and "64 MB per request (the answer folder is full)" in results[
        "many_arrays"][1]
    assert results["a_few_arrays"] == [True, None, 3] and results["after"][0]
    print("grader RSS (MB):", rss)
    assert rss["peak"] <= PARENT_BUDGET_MB and rss["peak"] - rss["before"] <= PARENT_READ_MB, rss


def test_a_request_reading_more_than_its_total_is_an_error_naming_the_limit(tmp_path):
    limits = replace(LIMITS, file_mb=16, max_answer_mb=32)
    with Sandbox(hostile(tmp_path, "huge_return.py"), None, limits, require_isolation=False) as box:
        box.run_cells()
        over = box.call("a_few_arrays")  # 45 MB of arrays, each within the per-array limit
        after = box.call("after")
    assert not over.ok and over.error.kind == "output_limit" and "32 MB per request" in over.error.message
    assert after.value == "still graded"


@needs_bwrap
def test_without_a_cgroup_processes_times_address_space_stay_within_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("grader.sandbox.cgroups.Cgroup.make", staticmethod(lambda memory, pids: (None, "test")))
    limits = replace(LIMITS, memory_mb=2048)  # 2 processes of 1024 MB
    with Sandbox(hostile(tmp_path, "fork_hog.py"), None, limits) as box:
        log = box.run_cells()
        after = box.call("after")
        described = box.protections()
    assert after.value == "still graded" and "BlockingIOError" in log.errors[0].message  # the 2nd fork
    assert "at most 2 process(es) of 1024 MB address space each, so 2048 MB in all" in described[0]


@needs_bwrap
def test_the_monitors_above_the_child_are_out_of_its_reach(tmp_path):
    with Sandbox(hostile(tmp_path, "monitors.py"), None, LIMITS) as box:
        log = box.run_cells()
        reached = box.get(["reached"])["reached"]
        after = box.call("after")
    assert set(statuses(log)) == {"ok"} and reached == [] and after.value == "still graded"


def test_output_and_tracebacks_are_bounded_by_the_grader_when_the_child_lifts_its_own_bounds(tmp_path):
    from grader.sandbox.runner import TRACEBACK_CHARS

    with Sandbox(hostile(tmp_path, "lifted_bounds.py"), None, LIMITS, require_isolation=False) as box:
        log = box.run_cells()
        noisy, quiet = box.call("noisy"), box.call("quiet")
    kept = LIMITS.output_kb * 1024 + 200  # the limit, plus the note saying how much was dropped
    assert all(len(o.stdout) <= kept for o in log.outcomes) and any("were dropped" in o.stdout for o in log.outcomes)
    assert not noisy.ok and len(noisy.error.traceback) <= TRACEBACK_CHARS + 10 and "ValueError" in noisy.error.traceback
    assert len(noisy.stdout) <= kept and len(noisy.stderr) <= kept and "stdout were dropped" in noisy.stdout
    assert quiet.value == "answered" and len(quiet.stdout) <= kept


@pytest.mark.skipif(not is_root() or cgroups.available() is None, reason="needs a cgroup (root)")
def test_processes_escaping_their_session_share_one_cpu_for_the_whole_sandbox(tmp_path):
    with Sandbox(hostile(tmp_path, "cpu_spinners.py"), None, LIMITS) as box:
        box.run_cells()
        group = box._cgroup
        spun = box.call("spin_for", [2.0, 4], timeout_s=30)
        protections = box.protections()
    if group.cpu_dir is None:
        pytest.skip("no cpu controller here")
    assert any("at most 1 CPU for all its processes" in p for p in protections), protections
    assert spun.ok, spun.error
    print("CPU seconds over wall seconds:", spun.value)
    assert spun.value["cpu"] <= 1.25 * spun.value["wall"], spun.value  # 4 spinners; without the limit up to 2x here
