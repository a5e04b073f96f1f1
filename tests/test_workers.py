"""Grading workers as real processes: jobs that kill their own worker, a worker that dies while idle, a job that
raises. The job functions live here, at module level, so that spawned workers can import them."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from grader.batch import Job
from grader.workers import run_in_workers


def report(job: Job) -> dict:
    """A job's result: who graded it."""
    return {"submission": job.name, "worker": os.getpid()}


def dies_while_flag_files_remain(job: Job) -> dict:
    """SIGKILLs its own worker for as long as job.path's folder holds 'kill-N' files (one is used up each time)."""
    flags = sorted(job.path.parent.glob(f"{job.name}.kill-*"))
    if job.name.startswith("slow"):
        time.sleep(1.0)
    if flags:
        flags[0].unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    return report(job)


def raises(job: Job) -> dict:
    raise RuntimeError(f"a grader bug on {job.name}")


def jobs_in(folder: Path, names: list[str], kills: dict[str, int]) -> list[Job]:
    for name, n in kills.items():
        for i in range(n):
            (folder / f"{name}.kill-{i}").touch()
    return [Job(folder / f"{name}.py", name, "k") for name in names]


def run(fn, jobs: list[Job], workers: int, on_done=None) -> dict[str, dict]:
    done: dict[str, dict] = {}

    def record(job: Job, result: dict) -> None:
        done[job.name] = result
        if on_done:
            on_done(job, result)

    run_in_workers(fn, jobs, workers, record)
    return done


def test_a_job_whose_worker_dies_once_is_graded_again_and_the_others_are_untouched(tmp_path):
    done = run(dies_while_flag_files_remain, jobs_in(tmp_path, ["a", "b", "c", "d"], {"b": 1}), 2)
    assert sorted(done) == ["a", "b", "c", "d"]
    assert done["b"]["submission"] == "b" and "killed by SIGKILL" in done["b"]["retried"]
    assert not any(done[n].get("retried") for n in "acd")


def test_a_job_whose_worker_dies_twice_gets_a_grader_failure_that_says_so(tmp_path):
    done = run(dies_while_flag_files_remain, jobs_in(tmp_path, ["a", "b", "c"], {"b": 2}), 2)
    assert done["b"]["grader_failed"]
    message = done["b"]["errors"][0]["message"]
    assert "worker process died" in message and "2 times" in message and "SIGKILL" in message
    assert done["a"]["submission"] == "a" and done["c"]["submission"] == "c"


def test_a_worker_killed_while_idle_is_replaced(tmp_path):
    """The fast job's worker is killed once it is idle; the slow job then dies once and must get a new worker."""
    def kill_idle_worker(job: Job, result: dict) -> None:
        if job.name == "fast":
            os.kill(result["worker"], signal.SIGKILL)

    jobs, done = jobs_in(tmp_path, ["fast", "slow"], {"slow": 1}), {}
    thread = threading.Thread(target=lambda: done.update(run(dies_while_flag_files_remain, jobs, 2,
                                                             kill_idle_worker)), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the run never finished (a job was offered to a dead worker forever)"
    assert done["slow"]["submission"] == "slow" and done["slow"]["retried"]


def test_a_job_that_raises_becomes_a_grader_failure_and_the_worker_goes_on(tmp_path):
    done = run(raises, [Job(tmp_path / "a.py", "a", "k"), Job(tmp_path / "b.py", "b", "k")], 1)
    assert done["a"]["grader_failed"] and "a grader bug on a" in done["a"]["errors"][0]["message"]
    assert "RuntimeError" in done["b"]["errors"][0]["traceback"]
