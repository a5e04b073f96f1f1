"""Grading on a Dask cluster (`grade --executor dask://HOST:PORT`), with the same results and files as local.

Workers need the grader installed, but share nothing else with the parent: each task carries the
submission's bytes, the rubric and MNIST are scattered once to every worker, and a task returns the full
result dict (figures included) so that the parent writes every report itself (JSON, HTML, results.json).
"""

from __future__ import annotations

import re
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.batch import Job, grader_failure
from grader.jobs import JobConfig, save_reports

CONNECT_TIMEOUT_S = 10
_ADDRESS = re.compile(r"dask://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})/?")


class ExecutorError(RuntimeError):
    """The executor cannot be used: a malformed address, no dask installed, or no scheduler there."""


@dataclass(frozen=True)
class Shared:
    """What every task of a run needs, sent to each worker once: rubric, MNIST arrays and run options."""

    rubric: Any  # grader.rubric.Rubric
    mnist: Any  # reference.mnist.Mnist
    full: bool
    visible_only: bool
    hide: tuple[str, ...]


@dataclass(frozen=True)
class Payload:
    """One submission as a task carries it: its file name and bytes, and how the parent names it."""

    filename: str
    content: bytes
    path: str
    name: str
    cache_key: str


def scheduler_address(executor: str) -> str:
    """'dask://HOST:PORT' -> 'tcp://HOST:PORT'; raises ExecutorError on anything else."""
    match = _ADDRESS.fullmatch(executor.strip())
    if not match:
        raise ExecutorError(f"--executor {executor!r}: expected 'local' or dask://HOST:PORT "
                            "(the address of a running dask.distributed scheduler)")
    return f"tcp://{match[1]}:{match[2]}"


_WORKER_DATA: dict[tuple[str, str, int, bool], tuple[Any, Any]] = {}


def _worker_data(shared: Shared) -> tuple[Any, Any]:
    """The rubric and prepared grading data, computed once per worker process and run settings."""
    key = (shared.rubric.sha256, shared.mnist.source, len(shared.mnist.y_train), shared.full)
    if key not in _WORKER_DATA:
        from grader.grading import prepare_data

        _WORKER_DATA[key] = (shared.rubric, prepare_data(shared.rubric, shared.mnist, full=shared.full))
    return _WORKER_DATA[key]


def grade_on_worker(payload: Payload, shared: Shared) -> dict[str, Any]:
    """Grade one submission on a Dask worker; the full result dict, figures included (the parent writes)."""
    from grader.grading import grade_submission

    rubric, data = _worker_data(shared)
    with tempfile.TemporaryDirectory(prefix="grade-dask-") as tmp:
        path = Path(tmp) / payload.filename
        path.write_bytes(payload.content)
        result = grade_submission(path, rubric, data, name=payload.name, visible_only=shared.visible_only,
                                  hide=(*shared.hide, tmp)).to_dict()
    result["path"] = payload.path  # where the parent found it, as a local run says
    return {**result, "cache_key": payload.cache_key, "data_source": data.source}


def collect(future: Any, job: Job, config: JobConfig) -> dict[str, Any]:
    """A finished task's result, its reports written by the parent; a failure becomes a grader failure."""
    try:
        result = future.result()
    except Exception as exc:  # noqa: BLE001 - the task raised on the worker, or the worker died
        tb = "".join(traceback.format_exception(exc))
        return grader_failure(job, f"the grader failed on this submission (on a Dask worker): {exc!r}", tb)
    summary = {k: v for k, v in result.items() if k != "figures"}
    if config.out_dir is not None:
        summary.update(save_reports(result, Path(config.out_dir), job.name, staff=not config.visible_only))
    return summary


def run_on_dask(
    address: str,
    config: JobConfig,
    jobs: list[Job],
    on_done: Callable[[Job, dict[str, Any]], None],
    on_start: Callable[[Job], None] | None = None,
) -> None:
    """Grade every job on the Dask cluster at address, calling on_done(job, result) as each one finishes."""
    scheduler = scheduler_address(address)
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise ExecutorError("--executor dask://... needs dask.distributed: "
                            "pip install 'mnist-backprop-grader[dask]'") from exc
    if not jobs:
        return
    from grader.rubric import load_rubric
    from reference.mnist import load_mnist

    shared = Shared(load_rubric(config.rubric_path), load_mnist(config.mnist_path), config.full,
                    config.visible_only, config.hide)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    with client:
        shared_future = client.scatter(shared, broadcast=True, hash=False)
        window = max(2, 2 * sum(client.nthreads().values()))  # bounded: each task carries a file
        queue: Iterator[Job] = iter(jobs)
        pending: dict[Any, Job] = {}
        finished = as_completed(loop=client.loop)

        def submit_next() -> None:
            for job in queue:
                try:
                    content = job.path.read_bytes()
                except OSError as exc:
                    on_done(job, grader_failure(job, f"cannot read the submission to send it: {exc}"))
                    continue
                payload = Payload(job.path.name, content, str(job.path), job.name, job.cache_key)
                future = client.submit(grade_on_worker, payload, shared_future, pure=False, retries=0,
                                       key=f"grade-{job.name}-{uuid.uuid4().hex[:12]}")
                pending[future] = job
                finished.add(future)
                if on_start:
                    on_start(job)
                return

        for _ in range(window):
            submit_next()
        for future in finished:
            job = pending.pop(future)
            on_done(job, collect(future, job, config))
            future.release()
            submit_next()
