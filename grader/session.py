"""A grading run over one or more submissions: data once per worker, parallel jobs, cached results, outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import __version__
from grader.batch import Job, Progress, cache_key, grader_failure, is_up_to_date, run_parallel, unique_stems
from grader.overrides import Override, overrides_for, overrides_key
from grader.rubric import Rubric, load_rubric
from grader.scoring import apply_overrides, hidden_checks


@dataclass(frozen=True)
class JobConfig:
    """What a worker needs to grade any job of this run (picklable: paths and flags only)."""

    rubric_path: str | None
    mnist_path: str | None
    full: bool
    out_dir: str | None
    visible_only: bool
    hide: tuple[str, ...]
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    """The results of a run (JSON dicts, in submission order) and where they were written."""

    results: list[dict[str, Any]]
    out_dir: Path | None
    class_outputs: dict[str, Path] = field(default_factory=dict)
    regraded: int = 0
    up_to_date: int = 0
    data_source: str = ""

    @property
    def grader_failed(self) -> bool:
        return any(r.get("grader_failed") for r in self.results)


_WORKER_STATE: dict[JobConfig, tuple[Rubric, Any]] = {}


def _state(config: JobConfig) -> tuple[Rubric, Any]:
    """The rubric and grading data, loaded once per worker process."""
    if config not in _WORKER_STATE:
        from grader.grading import prepare_data
        from reference.mnist import load_mnist

        rubric = load_rubric(config.rubric_path)
        _WORKER_STATE[config] = (rubric, prepare_data(rubric, load_mnist(config.mnist_path), full=config.full))
    return _WORKER_STATE[config]


def grade_job(job: Job, config: JobConfig) -> dict[str, Any]:
    """Grade one submission in this process (student code still runs in its own sandboxed child)."""
    from grader.grading import grade_submission
    from grader.report.writer import write_outputs

    rubric, data = _state(config)
    result = grade_submission(job.path, rubric, data, name=job.stem, visible_only=config.visible_only,
                              hide=config.hide)
    result = apply_overrides(result, overrides_for(config.overrides, job.path, job.stem))
    extra = {"cache_key": job.cache_key, "data_source": data.source}
    if config.visible_only:
        extra["hidden_checks"] = hidden_checks(rubric)
    if config.out_dir is not None:
        write_outputs(result, config.out_dir, staff=not config.visible_only, name=job.stem, extra=extra)
    summary = result.to_dict()
    summary.pop("figures", None)
    return {**summary, **extra}


class _JobRunner:
    """grade_job bound to a config, picklable for a process pool."""

    def __init__(self, config: JobConfig):
        self.config = config

    def __call__(self, job: Job) -> dict[str, Any]:
        return grade_job(job, self.config)


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
        """Grade every path (skipping up-to-date ones unless forced) and write the class outputs."""
        out = self.out_dir.resolve() if self.out_dir is not None else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        names = unique_stems(paths)
        options = {"full": self.full, "visible_only": self.visible_only, "mnist": self.mnist_path or ""}
        jobs = [Job(p, names[p], cache_key(p, self.rubric.sha256, __version__, self._options(options, p, names[p])))
                for p in paths]
        hide = tuple(sorted({str(p.parent) for p in paths} | ({str(out)} if out else set())
                            | ({str(Path(self.mnist_path).resolve())} if self.mnist_path else set())))
        config = JobConfig(self.rubric_path, self.mnist_path, self.full, str(out) if out else None,
                           self.visible_only, hide, self.overrides)
        results: dict[Path, dict[str, Any]] = {}
        todo = []
        for job in jobs:
            if out is not None and not self.force and is_up_to_date(out, job):
                results[job.path] = json.loads((out / f"{job.stem}.json").read_text())
            else:
                todo.append(job)
        progress = Progress(len(todo), enabled=self.progress)

        def done(job: Job, result: dict[str, Any]) -> None:
            if result.get("grader_failed") and out is not None:
                from grader.report.writer import write_outputs

                write_outputs(result, out, name=job.stem)
            results[job.path] = result
            progress.done(job, result)

        try:
            if self.executor == "local":
                run_parallel(_JobRunner(config), todo, self.jobs, done, progress.start)
            else:
                from grader.executors import run_on_dask

                run_on_dask(self.executor, config, todo, done, progress.start)
        finally:
            progress.close()
        ordered = [results.get(j.path) or grader_failure(j, "not graded") for j in jobs]
        class_outputs = {}
        if out is not None and len(jobs) > 1:
            from grader.report.writer import write_class_outputs

            class_outputs = write_class_outputs(ordered, out, names={str(j.path): j.stem for j in jobs})
        source = next((r.get("data_source", "") for r in ordered if r.get("data_source")), "")
        return RunOutcome(ordered, out, class_outputs, len(todo), len(jobs) - len(todo), source)
