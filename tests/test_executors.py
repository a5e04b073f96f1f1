"""Grading on a real dask.distributed LocalCluster (2 worker processes, loopback) matches grading locally."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from grader.batch import Job, discover
from grader.executors import ExecutorError, Payload, Shared, collect, grade_on_worker, run_on_dask, scheduler_address
from grader.jobs import JobConfig
from grader.rubric import load_rubric
from grader.session import GradingSession
from reference.mnist import load_mnist, sample_path

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
TIMING_KEYS = {"graded_at", "duration_s", "execution_time"}


@pytest.fixture(scope="module")
def cluster():
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # the worker processes inherit it
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as lc:
        yield lc


def executor_of(cluster) -> str:
    return "dask://" + cluster.scheduler_address.removeprefix("tcp://")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("submissions")
    shutil.copy(ROOT / "submissions" / "kv2154.py", d / "kv2154.py")
    shutil.copy(ROOT / "reference" / "solution.py", d / "solution.py")
    (d / "syntax_error.py").write_text("def train_one_sample(sample, y, learning_rate=0.003)\n    return 1\n")
    return d


def session(out: Path, executor: str = "local") -> GradingSession:
    return GradingSession(rubric=load_rubric(None), mnist_path=str(sample_path()), out_dir=out, jobs=1,
                          executor=executor, progress=False)


def without_timings(value):
    """The value without wall-clock fields, and with the sandbox's random per-run child uid blanked."""
    if isinstance(value, str):
        return re.sub(r"\buid \d+", "uid N", value)
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def differences(a, b, where: str = "") -> list[str]:
    """Where two JSON values differ, as 'path: a != b' lines (empty when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(dict.fromkeys([*a, *b]))
        return [d for k in keys for d in differences(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {str(a)[:200]} != {str(b)[:200]}"]


def read_outputs(out: Path) -> dict[str, object]:
    """Every JSON written (per-submission JSON and results.json), timings removed; and which files exist."""
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    data = {p.name: without_timings(json.loads(p.read_text())) for p in sorted(out.glob("*.json"))}
    return {"files": files, **data}


def test_the_same_folder_graded_locally_and_on_the_cluster_gives_identical_json(cluster, folder, tmp_path):
    paths = discover([folder])
    local = session(tmp_path / "local").grade(paths)
    remote = session(tmp_path / "dask", executor_of(cluster)).grade(paths)
    assert not local.grader_failed and not remote.grader_failed
    assert [r["submission"] for r in remote.results] == ["kv2154", "solution", "syntax_error"]
    assert differences(without_timings(remote.results), without_timings(local.results)) == []
    local_files, remote_files = read_outputs(tmp_path / "local"), read_outputs(tmp_path / "dask")
    assert differences(remote_files, local_files) == []
    assert {"kv2154.html", "solution.html", "index.html", "grades.csv", "kv2154.results.json"} <= set(
        remote_files["files"])
    # The HTML (drawn by the parent from the figures the worker returned) shows the gradient tiles for kv2154.
    assert (tmp_path / "dask" / "kv2154.html").read_text().count("data:image/svg+xml") == (
        tmp_path / "local" / "kv2154.html").read_text().count("data:image/svg+xml") > 0
    assert 0 < remote.results[0]["score"] < remote.results[1]["score"]


def test_an_unreadable_submission_is_a_grader_failure_and_the_rest_are_graded(cluster, folder, tmp_path):
    gone = tmp_path / "gone.py"
    jobs = [Job(gone, "gone", "k1"), Job(folder / "syntax_error.py", "syntax_error", "k2")]
    config = JobConfig(None, str(sample_path()), False, None, False, ())
    started, done = [], {}
    run_on_dask(executor_of(cluster), config, jobs, lambda j, r: done.__setitem__(j.name, r), started.append)
    assert done["gone"]["grader_failed"] and "cannot read" in done["gone"]["errors"][0]["message"]
    assert not done["syntax_error"].get("grader_failed")
    assert done["syntax_error"]["cache_key"] == "k2" and "figures" not in done["syntax_error"]
    assert started == [jobs[1]]


def test_a_task_that_raises_on_a_worker_becomes_a_grader_failure(cluster, folder):
    job = Job(folder / "kv2154.py", "kv2154", "k")
    payload = Payload("kv2154.py", b"x = 1\n", str(job.path), job.name, job.cache_key)
    config = JobConfig(None, None, False, None, False, ())
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        broken = Shared(rubric=None, mnist=None, full=False, visible_only=False, hide=())
        result = collect(client.submit(grade_on_worker, payload, broken, pure=False), job, config)
    assert result["grader_failed"] and "Dask worker" in result["errors"][0]["message"]
    assert "AttributeError" in result["errors"][0]["traceback"]


def test_worker_result_carries_figures_and_the_parent_path(cluster, folder):
    shared = Shared(load_rubric(None), load_mnist(sample_path()), False, False, ())
    payload = Payload("kv2154.py", (folder / "kv2154.py").read_bytes(), "/somewhere/kv2154.py", "kv2154", "k")
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        result = client.submit(grade_on_worker, payload, shared, pure=False).result()
    assert result["path"] == "/somewhere/kv2154.py" and result["cache_key"] == "k"
    assert result["figures"]["gradients"]  # kv2154's backprop is wrong: the parent needs these for the HTML


@pytest.mark.parametrize("bad", ["local", "dask://", "dask://host", "tcp://127.0.0.1:8786", "dask://a b:1",
                                 "dask://host:port"])
def test_executor_addresses_other_than_dask_host_port_are_refused(bad):
    with pytest.raises(ExecutorError, match="dask://HOST:PORT"):
        scheduler_address(bad)


def test_dask_addresses_become_tcp_addresses():
    assert scheduler_address("dask://127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert scheduler_address("dask://sched.example.org:8786/") == "tcp://sched.example.org:8786"
    assert scheduler_address("dask://[::1]:8786") == "tcp://[::1]:8786"


def test_no_scheduler_at_the_address_is_a_clear_error(tmp_path, monkeypatch):
    import socket

    import grader.executors

    monkeypatch.setattr(grader.executors, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = JobConfig(None, str(sample_path()), False, None, False, ())
    job = Job(tmp_path / "a.py", "a", "k")
    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler"):
        run_on_dask(f"dask://127.0.0.1:{port}", config, [job], lambda j, r: None)
