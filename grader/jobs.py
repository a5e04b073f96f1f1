"""One submission's job in this process: grade it (student code still runs in its own sandboxed child) and
write its report set. Both the local worker pool and Dask run jobs through here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader.batch import Job
from grader.overrides import Override, overrides_for
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
    data_dir: str | None = None  # the data the parent prepared (grader.data.save_data), else prepared here
    data_source: str | None = None  # where this run's MNIST came from (a cached entry records its first run's)


def cannot_write(folder: Path | str, exc: OSError) -> str:
    """'cannot write to reports/: No space left on device'."""
    return f"cannot write to {folder}/: {exc.strerror or exc}"


_WORKER_STATE: dict[JobConfig, tuple[Rubric, Any]] = {}


def _state(config: JobConfig) -> tuple[Rubric, Any]:
    """The rubric and grading data, loaded once per worker process (the data as the parent prepared it)."""
    if config not in _WORKER_STATE:
        from grader.data import cached_data, load_data

        rubric = load_rubric(config.rubric_path)
        data = load_data(Path(config.data_dir)) if config.data_dir else \
            cached_data(rubric, config.mnist_path, full=config.full)
        if config.data_source:
            data = replace(data, source=config.data_source)
        _WORKER_STATE[config] = (rubric, data)
    return _WORKER_STATE[config]


def grade_job(job: Job, config: JobConfig) -> dict[str, Any]:
    """Grade one submission in this process (student code still runs in its own sandboxed child).

    Its reports are written here; the result says if they could not be (`report_error`) or if a good earlier
    report was kept over a grader failure (`report_kept`).
    """
    from grader.grading import grade_submission

    rubric, data = _state(config)
    result = grade_submission(job.path, rubric, data, name=job.name, visible_only=config.visible_only,
                              hide=config.hide)
    result = apply_overrides(result, overrides_for(config.overrides, job.path, job.name))
    extra = {"cache_key": job.cache_key, "data_source": data.source}
    if config.visible_only:
        extra["hidden_checks"] = hidden_checks(rubric)
    summary = result.to_dict()
    summary.pop("figures", None)
    summary.update(extra)
    if config.out_dir is not None:
        summary.update(save_reports(result, Path(config.out_dir), job.name, staff=not config.visible_only,
                                    extra=extra))
    return summary


def save_reports(result: Any, out: Path, name: str, *, staff: bool = True,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a submission's report set; {} when written, else {"report_kept": True} or {"report_error": why}."""
    from grader.report.writer import write_or_keep

    try:
        written = write_or_keep(result, out, name=name, staff=staff, extra=extra)
    except OSError as exc:
        return {"report_error": cannot_write(out, exc), "report_errno": exc.errno}
    return {} if written is not None else {"report_kept": True}
