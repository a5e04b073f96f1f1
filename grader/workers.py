"""Grading workers on this machine: one process per worker, one submission at a time, each death noticed.

A worker that dies (a kill, a segfault, the out-of-memory killer) costs only the submission it held: that
submission is graded again once in a fresh worker, and if that worker dies too it gets a grader-failure result;
the other workers go on. Workers get SIGTERM when `grade` dies, SIGTERM raises in them like Ctrl-C (so each
sandbox is closed and its folder deleted), and whatever a dead worker left behind is swept.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from grader import lifetime
from grader.batch import Job, call_safely, grader_failure

ATTEMPTS = 2  # a submission is graded at most twice if its worker dies
STOP_TIMEOUT_S = 15.0  # how long a stopping worker gets to close its sandbox before SIGKILL


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process
    conn: Connection
    job: Job | None = None
    attempt: int = 0
    note: str = ""


def _serve(conn: Connection, fn: Callable[[Job], dict[str, Any]], parent: int) -> None:
    """A worker's loop: receive a job, send back its result; end on None, EOF, SIGTERM or Ctrl-C."""
    lifetime.end_with_parent(parent)
    lifetime.raise_on_sigterm()
    try:
        while True:
            job = conn.recv()
            if job is None:
                return
            conn.send(call_safely(fn, job))
    except (EOFError, OSError, KeyboardInterrupt, lifetime.Terminated):
        return
    finally:
        # A signal can land while a sandbox is starting or closing (its folder not yet deleted): whatever this
        # worker still owns goes now.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # A killed `grade` cannot delete its own folders (the data it prepared for the workers): they go too.
        lifetime.sweep([os.getpid()] + ([parent] if os.getppid() != parent else []))


def _start_method() -> str:
    """fork when this process runs one thread (a worker then starts with the modules imported here; spawn imports
    them again, 0.2 s), else spawn: a fork copies no lock that another thread holds."""
    fork = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
    return "fork" if fork else "spawn"


def death_of(process: Any) -> str:
    """How a worker process ended, in words."""
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (": a kill or the out-of-memory killer" if -code == signal.SIGKILL else "")
    return f"exited with status {code}"


def worker_death(job: Job, how: str) -> dict[str, Any]:
    """The result of a submission whose grading worker died on every attempt."""
    return grader_failure(job, f"The grader's worker process died while grading this submission, {ATTEMPTS} "
                               f"times ({how}). This is the grader's failure, not the submission's: the course "
                               "staff can grade it again.", where="grading worker")


def run_in_workers(
    fn: Callable[[Job], dict[str, Any]],
    jobs: list[Job],
    workers: int,
    on_done: Callable[[Job, dict[str, Any]], None],
    on_start: Callable[[Job], None] | None = None,
    prepare: Callable[[], None] | None = None,
) -> None:
    """fn(job) for every job in `workers` worker processes, calling on_done(job, result) as each ends.

    `prepare()` runs here once the workers are starting and before any job is sent (their start-up, mostly
    imports, overlaps it); if it raises, the workers are stopped and the exception goes on. Ctrl-C or SIGTERM
    (raised as lifetime.Terminated) stops the workers, closing their sandboxes, and is raised again once they
    are gone: results already passed to on_done stand.
    """
    context = multiprocessing.get_context(_start_method())
    queue: deque[tuple[Job, int, str]] = deque((job, 1, "") for job in jobs)
    pool: list[_Worker] = []
    ended: list[int] = []

    def start_worker() -> _Worker:
        here, there = context.Pipe()
        process = context.Process(target=_serve, args=(there, fn, os.getpid()), daemon=True,
                                  name="grading-worker")
        process.start()
        there.close()
        return _Worker(process, here)

    try:
        pool.extend(start_worker() for _ in range(min(workers, len(queue))))
        if prepare is not None and queue:
            prepare()
        while queue or any(w.job for w in pool):
            while len(pool) < min(workers, len(queue) + sum(1 for w in pool if w.job)):
                pool.append(start_worker())
            for worker in list(pool):
                if worker.job is None and queue:
                    job, attempt, note = queue.popleft()
                    try:
                        worker.conn.send(job)
                    except OSError:  # it died while idle: the job waits for a fresh worker
                        queue.appendleft((job, attempt, note))
                        pool.remove(worker)
                        ended.append(worker.process.pid)
                        worker.conn.close()
                        continue
                    worker.job, worker.attempt, worker.note = job, attempt, note
                    if on_start and attempt == 1:
                        on_start(job)
            busy = [w for w in pool if w.job is not None]
            if not busy:
                continue
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                job = worker.job
                assert job is not None
                try:
                    result = worker.conn.recv() if worker.conn.poll() else None
                except (EOFError, OSError):
                    result = None
                if result is not None:
                    worker.job = None
                    on_done(job, {**result, "retried": worker.note} if worker.note else result)
                    continue
                worker.process.join(5)
                how = death_of(worker.process)
                pool.remove(worker)
                ended.append(worker.process.pid)
                worker.conn.close()
                lifetime.sweep([worker.process.pid])
                if worker.attempt < ATTEMPTS:
                    queue.appendleft((job, worker.attempt + 1, f"its first grading worker died ({how}); "
                                                              "it was graded again in a fresh worker"))
                else:
                    on_done(job, worker_death(job, how))
    finally:
        _stop(pool)
        lifetime.sweep([*ended, *(w.process.pid for w in pool)])


def _stop(pool: list[_Worker]) -> None:
    """Stop every worker: idle ones by message, busy ones (an interrupted run) by SIGTERM; SIGKILL what lingers."""
    main = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        for worker in pool:
            if worker.job is None and worker.process.is_alive():
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            elif worker.process.is_alive():
                try:
                    os.kill(worker.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for worker in pool:
            worker.process.join(STOP_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
