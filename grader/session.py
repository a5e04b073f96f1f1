"""A grading run over one or more submissions: data once per worker, parallel jobs, cached results, outputs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grader import __version__, lifetime
from grader.batch import Job, Progress, cache_key, grader_failure, is_up_to_date
from grader.jobs import JobConfig, cannot_write, grade_job, save_reports
from grader.overrides import Override, overrides_for, overrides_key
from grader.rubric import Rubric


class OutputFolderError(OSError):
    """--out cannot be written (read-only, no permission, full): found before anything is graded."""


@dataclass(frozen=True)
class RunOutcome:
    """The results of a run (JSON dicts, in submission order) and where they were written.

    `kept`: submissions the grader failed on whose good earlier report was kept; `unwritten`: submissions
    whose reports could not be written ({name: reason}); `write_problem`: one sentence on what to do about
    it; `interrupted`: the signal that stopped the run (SIGINT, SIGTERM), or 0.
    """

    results: list[dict[str, Any]]
    out_dir: Path | None
    class_outputs: dict[str, Path] = field(default_factory=dict)
    regraded: int = 0
    up_to_date: int = 0
    data_source: str = ""
    kept: tuple[str, ...] = ()
    unwritten: dict[str, str] = field(default_factory=dict)
    write_problem: str = ""
    interrupted: int = 0
    not_graded: tuple[str, ...] = ()

    @property
    def grader_failed(self) -> bool:
        from grader.report.writer import is_grader_failure

        return any(is_grader_failure(r) for r in self.results)


def check_writable(out: Path) -> None:
    """Create out (and its parents) and write and remove a small file there, or raise OutputFolderError."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".grade-probe-") as probe:
            probe.write(b"x" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise OutputFolderError(exc.errno, cannot_write(out, exc)) from exc


RUN_ONLY_KEYS = ("report_error", "report_errno", "report_kept", "retried")


class _JobRunner:
    """grade_job bound to a config, picklable for a process pool."""

    def __init__(self, config: JobConfig):
        self.config = config

    def __call__(self, job: Job) -> dict[str, Any]:
        return grade_job(job, self.config)


class _PreparedData:
    """The run's grading data: the cached entry if this MNIST file, rubric and grader prepared one before, else
    MNIST validated (MnistError before any job is sent) and cut once for every worker, then kept for the next run
    (grader.data_cache)."""

    def __init__(self, rubric: Rubric, mnist_path: str | None, full: bool):
        from grader import data_cache

        self.rubric, self.mnist_path, self.full = rubric, mnist_path, full
        self.key, self.entry, self.source = data_cache.lookup(mnist_path, rubric.sha256, full)
        self.mnist: Any = None
        self._made: Path | None = None

    def validate(self) -> None:
        """Load and validate MNIST now, unless a cached entry stands for it (raises MnistError)."""
        from reference.mnist import load_mnist

        if self.entry is None and self.mnist is None:
            self.mnist = load_mnist(self.mnist_path)
            self.source = self.mnist.source

    def prepare(self, folder: Path) -> None:
        """Fill folder (the workers' data folder) with links to the cached entry, or cut MNIST into it."""
        if self.entry is not None:
            for path in self.entry.iterdir():
                (folder / path.name).symlink_to(path)
            return
        from grader.data import prepare_data, save_data

        self.validate()
        mnist, self.mnist = self.mnist, None
        save_data(prepare_data(self.rubric, mnist, full=self.full), folder)
        self._made = folder if self.key is not None else None

    def keep(self) -> None:
        """Copy the data prepared this run into the cache, for the next run (about 30 ms, after the grading)."""
        from grader import data_cache

        if self._made is not None and self.key is not None:
            data_cache.store_entry(self.key, self._made)
            self._made = None


@dataclass
class GradingSession:
    """One `grade` invocation's settings."""

    rubric: Rubric
    rubric_path: str | None = None
    mnist_path: str | None = None
    full: bool = False
    out_dir: Path | None = Path("reports")
    jobs: int = 1
    force: bool = False
    visible_only: bool = False
    executor: str = "local"
    progress: bool = True
    overrides: tuple[Override, ...] = ()

    def _options(self, options: dict[str, Any], path: Path, stem: str) -> dict[str, Any]:
        """The options a submission's cache key covers: the run's, plus the staff overrides that name it."""
        key = overrides_key(overrides_for(self.overrides, path, stem))
        return {**options, "overrides": key} if key else options

    def grade(self, paths: list[Path]) -> RunOutcome:
        """Grade every path (skipping up-to-date ones unless forced) and write the class outputs.

        Checked before anything is graded or written: the MNIST file (MnistError; unless a cached entry stands for
        it, it is validated while the workers start, before any job is sent) and that the output folder can be
        written (OutputFolderError). Ctrl-C and SIGTERM (lifetime.Terminated) end the run with what is complete
        written and `interrupted` set.
        """
        from reference.mnist import MnistError

        data = _PreparedData(self.rubric, self.mnist_path, self.full)
        out = self.out_dir.resolve() if self.out_dir is not None else None
        made = out is not None and not out.exists()
        try:
            return self._grade(paths, data, out)
        except MnistError:
            if made and out is not None:
                with contextlib.suppress(OSError):
                    out.rmdir()  # nothing was written: leave no empty folder behind either
            raise

    def _grade(self, paths: list[Path], data: _PreparedData, out: Path | None) -> RunOutcome:
        from grader.report.names import report_names

        if out is not None:
            check_writable(out)
        lifetime.sweep()  # what dead graders left behind
        names = report_names(paths, out)
        options = {"full": self.full, "visible_only": self.visible_only, "mnist": self.mnist_path or ""}
        from grader.data_cache import code_digest

        build = f"{__version__}+{code_digest()[:16]}"  # a changed grader re-grades, whatever its version says
        jobs = [Job(p, names[str(p)], cache_key(p, self.rubric.sha256, build,
                                                self._options(options, p, names[str(p)]))) for p in paths]
        hide = tuple(sorted({str(p.parent) for p in paths} | ({str(out)} if out else set())
                            | ({str(Path(self.mnist_path).resolve())} if self.mnist_path else set())))
        config = JobConfig(self.rubric_path, self.mnist_path, self.full, str(out) if out else None,
                           self.visible_only, hide, self.overrides)
        results: dict[Path, dict[str, Any]] = {}
        todo = []
        for job in jobs:
            if out is not None and not self.force and is_up_to_date(out, job):
                results[job.path] = json.loads((out / f"{job.name}.json").read_text(encoding="utf-8"))
            else:
                todo.append(job)
        if not todo or self.executor != "local":
            data.validate()  # no workers of ours to overlap it with
        progress = Progress(len(todo), enabled=self.progress)

        def done(job: Job, result: dict[str, Any]) -> None:
            if result.get("grader_failed") and out is not None:  # no worker wrote it: a worker died or raised
                result = {**result, **save_reports(result, out, job.name)}
            results[job.path] = result
            progress.done(job, result)

        interrupted = 0
        try:
            if self.executor == "local":
                from grader.workers import run_in_workers

                with tempfile.TemporaryDirectory(prefix=f"{lifetime.box_prefix()}data-") as data_dir:
                    cached_source = data.source if data.entry is not None else None  # else save_data records it
                    run_in_workers(_JobRunner(replace(config, data_dir=data_dir, data_source=cached_source)),
                                   todo, self.jobs, done, progress.start, prepare=lambda: data.prepare(Path(data_dir)))
                    data.keep()
            else:
                from grader.executors import run_on_dask

                run_on_dask(self.executor, config, todo, done, progress.start)
        except KeyboardInterrupt:
            interrupted = signal.SIGINT
        except lifetime.Terminated as exc:
            interrupted = exc.signum
        finally:
            progress.close()
        return self._finish(jobs, results, out, len(todo), data.source, interrupted)

    def _finish(self, jobs: list[Job], results: dict[Path, dict[str, Any]], out: Path | None, graded: int,
                data_source: str, interrupted: int) -> RunOutcome:
        """The outcome, with index.html and grades.csv listing every complete report set in out."""
        from grader.report.writer import complete_report

        ordered = [results.get(j.path) or grader_failure(j, "not graded: the run was interrupted") for j in jobs]
        unwritten = {j.name: r["report_error"] for j, r in zip(jobs, ordered, strict=True) if r.get("report_error")}
        kept = tuple(j.name for j, r in zip(jobs, ordered, strict=True) if r.get("report_kept"))
        not_graded = tuple(j.name for j in jobs if j.path not in results)
        class_outputs: dict[str, Path] = {}
        problem = next(iter(unwritten.values()), "")
        if out is not None and len(jobs) > 1:
            from grader.report.writer import write_class_outputs

            listed = []
            for job, result in zip(jobs, ordered, strict=True):
                fresh = job.path in results and not any(result.get(k) for k in ("report_error", "report_kept"))
                shown = {k: v for k, v in result.items() if k not in RUN_ONLY_KEYS} if fresh else \
                    complete_report(out, job.name)
                if shown is not None:
                    listed.append(shown)
            try:
                class_outputs = write_class_outputs(listed, out, names={str(j.path): j.name for j in jobs})
            except OSError as exc:
                problem = problem or cannot_write(out, exc)
        lifetime.sweep()
        source = next((r.get("data_source", "") for r in ordered if r.get("data_source")), data_source)
        return RunOutcome(ordered, out, class_outputs, graded - len(not_graded), len(jobs) - graded, source,
                          kept, unwritten, problem, interrupted, not_graded)
