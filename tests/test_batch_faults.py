"""Fault injection on real `grade` runs: killed workers, signals to the whole run, a full and a read-only output
folder. Real processes, real signals, real file systems (a small tmpfs, as root).

The runs that take 15-40 s here are marked slow: a plain `pytest` leaves them out, `pytest -m slow` (CI) runs them.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

from grader.lifetime import box_owner, leftover_cgroups

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "reference" / "data" / "mnist_sample.npz"
CELL_TIMEOUT_S = 10  # long enough to find and kill the worker of a spinning submission, short enough to wait out
REPORT_SUFFIXES = (".json", ".html", ".results.json")


# --- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rubric(tmp_path_factory) -> Path:
    """The shipped rubric with a short cell time-out, so that a spinning submission is graded in seconds."""
    path = tmp_path_factory.mktemp("rubric") / "rubric.yaml"
    text = (ROOT / "grader" / "rubric.yaml").read_text()
    path.write_text(re.sub(r"cell_timeout_s: \d+", f"cell_timeout_s: {CELL_TIMEOUT_S}", text))
    return path


def spinning(folder: Path, stem: str = "spin") -> Path:
    """A submission whose top level never ends; its unique name marks its sandbox child's command line."""
    path = folder / f"{stem}_{uuid.uuid4().hex[:10]}.py"
    path.write_text("x = 0\nwhile True:\n    x += 1\n")
    return path


def sleeping(folder: Path, seconds: float = 4) -> Path:
    """A submission that takes a few seconds at top level and then ends (a worker can be killed meanwhile)."""
    path = folder / f"sleep_{uuid.uuid4().hex[:10]}.py"
    path.write_text(f"import time\ntime.sleep({seconds})\nx = 1\n")
    return path


def trivial(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("x = 1\n")
    return path


def start_grade(*args: str, rubric: Path) -> subprocess.Popen:
    """`grade ARGS` as its own process group (as a shell runs it), from this worktree's code."""
    command = [sys.executable, "-m", "grader.cli", *args, "--rubric", str(rubric), "--mnist", str(SAMPLE),
               "--quiet"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def sandbox_of(marker: str, grade: subprocess.Popen, exclude: set[int] = frozenset(),
               timeout: float = 120) -> tuple[int, list[int]]:
    """(grading worker pid, pids of its sandbox processes) for the submission whose name contains marker.

    The worker is a child of this `grade`; a dying sandbox process already handed to init is not one.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {}
        for p in psutil.process_iter(["pid", "ppid", "cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if "runner.py" in cmdline and marker in cmdline:
                found[p.info["pid"]] = p.info["ppid"]
        workers = {c.pid for c in psutil.Process(grade.pid).children()} - set(exclude)
        tops = [pid for pid, ppid in found.items() if ppid in workers]
        if tops:
            return found[tops[0]], list(found)
        time.sleep(0.1)
    raise AssertionError(f"no sandbox child for {marker} appeared in {timeout} s")


def descendants(pid: int) -> set[int]:
    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def running(pids: set[int]) -> list[str]:
    """The processes among pids still running (zombies awaiting their reaper do not count)."""
    alive = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


def processes_running(marker: str) -> list[int]:
    return [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
            if marker in " ".join(p.info["cmdline"] or []) and "runner.py" in " ".join(p.info["cmdline"] or [])]


def boxes_of(pids: set[int]) -> list[Path]:
    """Sandbox folders and cgroups made by any of these processes."""
    return [p for p in Path(tempfile.gettempdir()).glob("grader-box-*") if box_owner(p) in pids] + \
        leftover_cgroups(pids)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


def report_sets(out: Path) -> dict[str, set[str]]:
    """{report name: which of its three files exist}, from the files in out."""
    sets: dict[str, set[str]] = {}
    for f in out.iterdir():
        for suffix in (".results.json", ".json", ".html"):
            if f.name.endswith(suffix) and f.name not in ("index.html",):
                sets.setdefault(f.name[: -len(suffix)], set()).add(suffix)
                break
    return sets


def snapshot(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}


def index_links(out: Path) -> list[str]:
    return re.findall(r'href="([^"#]+\.html)"', (out / "index.html").read_text())


# --- a dead worker ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_killed_twice_costs_only_its_submission_and_leaves_nothing_behind(tmp_path, rubric):
    folder = tmp_path / "class"
    folder.mkdir()
    spin = spinning(folder)
    trivial(folder, "a_first.py")
    trivial(folder, "z_last.py")
    (folder / "solution.py").write_text((ROOT / "reference" / "solution.py").read_text())
    out = tmp_path / "reports"
    proc = start_grade(str(folder), "--out", str(out), "--jobs", "2", rubric=rubric)
    seen = {proc.pid}
    first, children = sandbox_of(spin.stem, proc)
    assert psutil.Process(first).ppid() == proc.pid  # a grading worker of this run
    seen |= descendants(proc.pid)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not running(set(children)), 10, "the killed worker's sandbox child did not die")
    second, children = sandbox_of(spin.stem, proc, exclude={first})
    seen |= descendants(proc.pid)
    os.kill(second, signal.SIGKILL)
    wait_until(lambda: not running(set(children)), 10, "the second killed worker's sandbox child did not die")
    code, stdout, stderr = finish(proc)

    assert code == 1, stderr  # the grader failed on one submission, as the README says
    failed = (out / f"{spin.stem}.json").read_text()
    assert "worker process died" in failed and "SIGKILL" in failed
    assert "worker process died" in (out / f"{spin.stem}.html").read_text()
    sets = report_sets(out)
    assert {n for n, files in sets.items() if files == set(REPORT_SUFFIXES)} == {
        spin.stem, "a_first", "z_last", "solution"}, sets
    assert '"score": 100' in (out / "solution.json").read_text()
    rows = list(csv.DictReader((out / "grades.csv").open(newline="")))
    assert len(rows) == 4
    assert sorted(index_links(out)) == sorted(f"{n}.html" for n in sets)
    assert all((out / link).is_file() for link in index_links(out))
    assert f"the grader itself failed on {spin.stem}" in stderr
    # (multiprocessing's resource tracker, a child of grade, ends a moment after it)
    wait_until(lambda: not running(seen | {first, second}), 10, "a process of the run outlived it")
    assert not processes_running(spin.stem) and not boxes_of(seen | {first, second})


@pytest.mark.slow
def test_a_worker_killed_once_is_graded_again_and_a_grader_failure_keeps_the_earlier_report(tmp_path, rubric):
    folder = tmp_path / "class"
    folder.mkdir()
    slow = sleeping(folder)
    trivial(folder, "other.py")
    out = tmp_path / "reports"
    proc = start_grade(str(folder), "--out", str(out), "--jobs", "2", rubric=rubric)
    worker, _ = sandbox_of(slow.stem, proc)
    os.kill(worker, signal.SIGKILL)
    code, stdout, stderr = finish(proc)
    assert code == 0, stderr
    report = json.loads((out / f"{slow.stem}.json").read_text())
    assert not report.get("grader_failed") and report["max_score"] == 100 and report["questions"]
    assert not [e for e in report["errors"] if e["kind"] == "grader"]
    assert "graded again in a fresh worker" in stdout
    earlier = snapshot(out)

    # Graded again (--force), and this time both workers die: the good report above stays as it was.
    proc = start_grade(str(folder), "--out", str(out), "--jobs", "2", "--force", rubric=rubric)
    first, _ = sandbox_of(slow.stem, proc)
    os.kill(first, signal.SIGKILL)
    second, _ = sandbox_of(slow.stem, proc, exclude={first})
    os.kill(second, signal.SIGKILL)
    code, stdout, stderr = finish(proc)
    assert code == 1
    after = snapshot(out)
    for suffix in REPORT_SUFFIXES:
        assert after[f"{slow.stem}{suffix}"] == earlier[f"{slow.stem}{suffix}"]
    assert f"the grader itself failed on {slow.stem}: their earlier reports were kept" in stderr
    assert f"{slow.stem}.html" in index_links(out)


# --- signals to the whole run -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_run_stops_it_cleanly_and_a_rerun_resumes(tmp_path, rubric, sig):
    folder = tmp_path / "class"
    folder.mkdir()
    trivial(folder, "a_done.py")
    spin = spinning(folder, "b_spin")
    out = tmp_path / "reports"
    proc = start_grade(str(folder), "--out", str(out), "--jobs", "2", rubric=rubric)
    worker, children = sandbox_of(spin.stem, proc)
    wait_until(lambda: (out / "a_done.json").exists(), 120, "a_done was not graded")
    seen = {proc.pid, worker, *children} | descendants(proc.pid)
    os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C or a scheduler's SIGTERM reaches every process of the run
    code, stdout, stderr = finish(proc, timeout=60)

    assert code == 128 + sig, stderr
    assert f"interrupted by {sig.name}" in stderr and "Run the same command again" in stderr
    assert report_sets(out) == {"a_done": set(REPORT_SUFFIXES)}
    assert [link for link in index_links(out)] == ["a_done.html"]
    assert not [f for f in out.iterdir() if f.name.endswith(".tmp")]
    wait_until(lambda: not running(seen), 10, "a process of the interrupted run is still running")
    assert not processes_running(spin.stem) and not boxes_of(seen)

    spin.write_text("x = 2\n")  # fixed by its student: the same command grades what is left
    code, stdout, stderr = finish(start_grade(str(folder), "--out", str(out), "--jobs", "2", rubric=rubric))
    assert code == 0, stderr
    assert "1 graded now, 1 up to date" in stdout


def test_a_killed_grade_takes_its_workers_and_their_sandboxes_with_it(tmp_path, rubric):
    folder = tmp_path / "class"
    folder.mkdir()
    spin = spinning(folder)
    trivial(folder, "other.py")
    proc = start_grade(str(folder), "--out", str(tmp_path / "reports"), "--jobs", "2", rubric=rubric)
    worker, children = sandbox_of(spin.stem, proc)
    seen = {worker, *children} | descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_until(lambda: not running(seen), 30, "a worker or sandbox child outlived the killed grade")
    assert not processes_running(spin.stem)
    wait_until(lambda: not boxes_of(seen | {proc.pid}), 10, "a sandbox folder outlived the killed grade")


# --- a full or read-only output folder -------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs of our own (as root), remountable at other sizes or read-only; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (run as root, as CI does, to test a full disk for real)")
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "grader-test", str(mount)],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], check=True)

    yield mount, remount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_loses_no_submission_and_leaves_no_half_report(tmp_path, rubric, tmpfs):
    disk, remount = tmpfs
    folder = tmp_path / "class"
    folder.mkdir()
    names = [f"s{i}" for i in range(1, 7)]
    for name in names:
        trivial(folder, f"{name}.py")
    out = disk / "reports"
    code, stdout, stderr = finish(start_grade(str(folder), "--out", str(out), "--jobs", "2", rubric=rubric))

    assert code == 1
    assert f"cannot write to {out}/: No space left on device" in stderr and "run the same command again" in stderr
    sets = report_sets(out)
    assert all(files == set(REPORT_SUFFIXES) for files in sets.values()), sets  # whole or not at all
    assert 0 < len(sets) < len(names)
    assert not [f for f in out.iterdir() if f.name.startswith(".")]  # no temporary file left
    unwritten = [n for n in names if n not in sets]
    assert all(n in stderr for n in unwritten)
    for name in names:  # every submission was graded, written or not
        assert re.search(rf"^{name}: 0 / 100", stdout, re.M), stdout

    remount("size=20m")  # space freed: the same command finishes the job
    code, stdout, stderr = finish(start_grade(str(folder), "--out", str(out), "--jobs", "2", rubric=rubric))
    assert code == 0, stderr
    assert f"{len(unwritten)} graded now, {len(sets)} up to date" in stdout
    assert sorted(index_links(out)) == sorted(f"{n}.html" for n in names)

    before = snapshot(out)
    disk_use = os.statvfs(disk)
    used_kb = (disk_use.f_blocks - disk_use.f_bfree) * disk_use.f_frsize // 1024
    remount(f"size={used_kb}k")  # full: found before grading
    code, stdout, stderr = finish(start_grade(str(folder), "--out", str(out), "--force", rubric=rubric))
    assert code == 2 and f"cannot write to {out}/: No space left on device" in stderr and not stdout
    assert snapshot(out) == before

    remount(f"size={used_kb + 12}k")  # all but full: a forced re-grade must leave every earlier report whole
    code, stdout, stderr = finish(start_grade(str(folder), "--out", str(out), "--jobs", "2", "--force",
                                              rubric=rubric))
    assert code == 1 and "No space left on device" in stderr
    assert snapshot(out) == before


def test_a_read_only_output_folder_stops_before_grading_and_touches_nothing(tmp_path, rubric, tmpfs):
    disk, remount = tmpfs
    out = disk / "reports"
    out.mkdir()
    (out / "kept.json").write_text('{"submission": "kept"}\n')
    remount("ro")
    folder = tmp_path / "class"
    folder.mkdir()
    trivial(folder, "a.py")
    start = time.monotonic()
    code, stdout, stderr = finish(start_grade(str(folder), "--out", str(out), rubric=rubric))
    assert code == 2
    assert stderr.strip().splitlines()[-1].startswith(f"grade: cannot write to {out}/: Read-only file system")
    assert sorted(p.name for p in out.iterdir()) == ["kept.json"]
    assert time.monotonic() - start < 30 and "graded now" not in stdout


def test_an_output_folder_without_write_permission_stops_before_grading(tmp_path, rubric):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions (the read-only tmpfs test covers root)")
    out = tmp_path / "reports"
    out.mkdir()
    out.chmod(0o555)
    folder = tmp_path / "class"
    folder.mkdir()
    trivial(folder, "a.py")
    code, stdout, stderr = finish(start_grade(str(folder), "--out", str(out), rubric=rubric))
    assert code == 2 and f"cannot write to {out}/: Permission denied" in stderr
