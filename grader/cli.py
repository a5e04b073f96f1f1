"""The `grade` command: a thin layer over grader.grading and grader.batch."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from grader.report.common import printable

if TYPE_CHECKING:
    from grader.session import RunOutcome

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
SHOWN_SKIPPED = 8  # skipped files named on the one "skipped" line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade",
        description="Grade MNIST-from-scratch submissions (.py / .ipynb): run them in a sandbox, check "
        "Q1-Q4 against the reference, write JSON, HTML and Gradescope reports.",
        epilog="`grade gradescope --out autograder.zip` builds a Gradescope autograder bundle.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="submission files or folders of them")
    p.add_argument("--out", default=None, help="output folder (default: reports/)")
    p.add_argument("--rubric", default=None, help="rubric.yaml (default: the shipped one)")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: cores)")
    p.add_argument("--mnist", default=None, help="MNIST npz in keras' layout (default: MNIST_PATH, keras' "
                   "cache, TensorFlow, then the bundled sample)")
    p.add_argument("--full", action="store_true", help="Q4 trains on all 60,000 images, as the handout does")
    p.add_argument("--force", action="store_true", help="re-grade submissions whose results are up to date")
    p.add_argument("--self-check", action="store_true",
                   help="a student's check: visible checks only, a terminal report, nothing written unless --out")
    p.add_argument("--overrides", default=None, metavar="FILE",
                   help="staff overrides {submission, check, points, comment, by} (default: overrides.yaml beside "
                   "--rubric, if any)")
    p.add_argument("--executor", default="local", help="'local' (default) or dask://HOST:PORT")
    p.add_argument("--doctor", action="store_true", help="show which sandbox protections work here, and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    """`grade`: SIGTERM ends it as Ctrl-C does (sandboxes closed, what is complete written, exit 128 + signal)."""
    from grader.lifetime import Terminated, raise_on_sigterm

    argv = sys.argv[1:] if argv is None else list(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        if main_thread:
            raise_on_sigterm()
        return _main(argv)
    except (KeyboardInterrupt, Terminated) as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"grade: interrupted by {signal.Signals(signum).name}: every report already written is whole; "
              "run the same command again to finish", file=sys.stderr)
        return 128 + signum
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["gradescope"] and not Path("gradescope").exists():
        from grader.gradescope_bundle import main as bundle_main

        return bundle_main(argv[1:])
    args = parser().parse_args(argv)
    if args.doctor:
        from grader.doctor import doctor

        return doctor(args.rubric)
    if not args.paths:
        parser().print_usage(sys.stderr)
        print("grade: error: name at least one submission file or folder", file=sys.stderr)
        return EXIT_USAGE
    if args.jobs is not None and args.jobs < 1:
        print("grade: error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE

    from grader.batch import NotASubmission, find_submissions
    from grader.executors import ExecutorError
    from grader.rubric import RubricError, load_rubric
    from reference.mnist import MnistError

    try:
        rubric = load_rubric(args.rubric)
    except RubricError as exc:
        print(f"grade: bad rubric: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        found = find_submissions(args.paths)
    except (FileNotFoundError, NotASubmission) as exc:
        print(f"grade: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    paths = found.submissions
    if not paths:
        print(f"grade: error: no .py or .ipynb files in {', '.join(args.paths)}", file=sys.stderr)
        return EXIT_USAGE
    if found.skipped:
        print(skipped_line(found.skipped), file=sys.stderr)
    from grader.overrides import OverridesError, default_overrides_path, load_overrides
    from grader.report.names import report_names

    out_dir = None if (args.self_check and args.out is None) else Path(args.out or "reports")
    overrides_path = args.overrides or default_overrides_path(args.rubric)
    try:
        names = report_names(paths, out_dir)
        overrides = load_overrides(overrides_path, rubric, [(p, names[str(p)]) for p in paths]) \
            if overrides_path else ()
    except OverridesError as exc:
        print(f"grade: bad overrides: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from grader.session import GradingSession, OutputFolderError

        session = GradingSession(
            rubric=rubric,
            rubric_path=args.rubric,
            mnist_path=args.mnist,
            full=args.full,
            out_dir=out_dir,
            jobs=args.jobs or os.cpu_count() or 1,
            force=args.force,
            visible_only=args.self_check,
            executor=args.executor,
            progress=not args.quiet and sys.stderr.isatty(),
            overrides=overrides,
        )
        outcome = session.grade(paths)
    except MnistError as exc:
        print(f"grade: bad MNIST file: {exc} (nothing was graded or written)", file=sys.stderr)
        return EXIT_USAGE
    except OutputFolderError as exc:
        print(f"grade: {exc.strerror} (nothing was graded; choose another --out or fix the folder)",
              file=sys.stderr)
        return EXIT_USAGE
    except ExecutorError as exc:
        print(f"grade: executor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the grader's own failure: say so, exit 1
        import traceback

        traceback.print_exc()
        print(f"grade: internal error: {exc!r}", file=sys.stderr)
        return EXIT_INTERNAL
    from grader.summary import print_summary

    print_summary(outcome, self_check=args.self_check)
    return exit_code(outcome)


def exit_code(outcome: RunOutcome) -> int:
    """128 + the signal for an interrupted run, 1 when the grader failed or a report could not be written."""
    from grader.summary import problem_lines

    for line in problem_lines(outcome):
        print(printable(f"grade: {line}"), file=sys.stderr)
    if outcome.interrupted:
        return 128 + outcome.interrupted
    return EXIT_INTERNAL if outcome.grader_failed or outcome.unwritten or outcome.write_problem else EXIT_OK


def skipped_line(skipped: list[Path]) -> str:
    """One line naming the files in the given folders that are not submissions."""
    # Students name these files: a control character or a line break in a name is shown, not obeyed.
    shown = printable(", ".join(str(p).replace("\n", "\\n") for p in skipped[:SHOWN_SKIPPED]))
    more = f" and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
    count = f"{len(skipped)} files that are not submissions" if len(skipped) > 1 else \
        "1 file that is not a submission"
    return f"grade: skipped {count} (.py or .ipynb): {shown}{more}"


if __name__ == "__main__":
    sys.exit(main())
