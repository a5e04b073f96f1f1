"""Problem labels: what kept a submission from running, in the plain words a TA sorts by.

Syntax errors and empty files are read from real files (parsing only); run errors come from real grading in
the sandbox where it matters (a syntax error, an empty file, a `check()` cell left in a notebook).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.grading import grade_submission
from grader.problems import EMPTY_FILE, NOT_A_SUBMISSION, error_labels, place, problem_labels
from grader.report import grades_csv, render_index
from grader.results import RunError
from grader.submission import load_submission
from grader.summary import submission_lines

ROOT = Path(__file__).resolve().parents[1]


def labels_of(path: Path, errors: tuple[RunError, ...] = ()) -> tuple[str, ...]:
    return problem_labels(load_submission(path), errors)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n\n# and another\n"])
def test_a_file_without_statements_is_an_empty_file(tmp_path, text):
    path = tmp_path / "hw.py"
    path.write_text(text)
    assert labels_of(path, (RunError("adaptation", "reading your code", "no global holds the weights"),)) == (
        EMPTY_FILE,)


def test_a_syntax_error_is_named_with_the_files_line_once(tmp_path):
    path = tmp_path / "hw.py"
    path.write_text("import numpy as np\n\nx = 1\ndef f(:\n    pass\n\ny = 2\n")
    cell = next(c for c in load_submission(path).cells if "def f" in c.source)
    raised = RunError("exception", cell.label, 'File "hw.py", line 4\nSyntaxError: invalid syntax')
    assert labels_of(path, (raised,)) == ("syntax error at line 4",)


def test_a_notebook_syntax_error_names_the_cell_and_its_line():
    notebook = ROOT / "tests" / "hostile" / "syntax_error_cell.ipynb"
    raised = (RunError("exception", "cell 3", "SyntaxError: invalid syntax"),
              RunError("exception", "cell 5", "ValueError: third line"))
    assert labels_of(notebook, raised) == ("syntax error in cell 3, line 2", "error in cell 5")


@pytest.mark.parametrize("name, content", [("notes.txt", "hello"), ("hw.ipynb", "{ not json")])
def test_a_file_that_is_no_python_or_notebook_is_not_a_submission(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert labels_of(path) == (NOT_A_SUBMISSION,)


def test_run_errors_get_one_label_per_kind_at_their_first_place():
    errors = [RunError("timeout", "cell 4", "cell 4 was still running after its 60 s limit"),
              RunError("memory", "line 7", "MemoryError"), RunError("memory", "lines 9-10", "MemoryError"),
              RunError("crash", "line 12", "killed by SIGSEGV"), RunError("timeout", "call train_one_epoch", "x")]
    assert error_labels(errors) == ["time-out in cell 4 (+1 more)", "memory limit (+1 more)", "crash"]
    assert error_labels([e.to_dict() for e in errors]) == error_labels(errors)
    assert (place("lines 2-3"), place("cell 4"), place("call train_one_sample")) == (
        "at lines 2-3", "in cell 4", "in train_one_sample")


def test_the_same_labels_reach_the_terminal_the_index_and_the_csv(rubric, data, tmp_path):
    syntax = tmp_path / "syntax.py"
    syntax.write_text("x = 1\ndef f(:\n  pass\n")
    empty = tmp_path / "empty.py"
    empty.write_text("# nothing yet\n")
    results = {p.stem: grade_submission(p, rubric, data) for p in (syntax, empty)}
    assert results["syntax"].problems[0] == "syntax error at line 2"
    assert "lines 2-3" not in results["syntax"].problems[0]
    assert results["empty"].problems == (EMPTY_FILE,)
    index, csv_text = render_index(results.values()), grades_csv(results.values())
    for r in results.values():
        shown = "; ".join(r.problems)
        assert shown in index and shown in csv_text
        assert f"({shown})" in submission_lines(json.loads(json.dumps(r.to_dict())), detailed=False,
                                                self_check=False)[0]
        assert f"Problems: {shown}" in submission_lines(r.to_dict(), detailed=True, self_check=False)


def test_a_check_cell_left_in_a_handed_in_notebook_is_no_problem(rubric, data, grade_once, tmp_path):
    """A real notebook (kv2154's code, then the self-check cell the README suggests) graded in the sandbox."""
    cells = [(ROOT / "submissions" / "kv2154.py").read_text(),
             "from grader import check\nresult = check()\ncheck('Q3')",
             "import grader\nif result is not None or 'run by the grader' not in grader.MESSAGE:\n"
             "    raise RuntimeError('the real grader was imported')"]
    notebook = tmp_path / "kv2154_with_check.ipynb"
    notebook.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": source} for i, source in enumerate(cells)],
    }))
    result = grade_submission(notebook, rubric, data)
    assert result.errors == () and result.problems == ()
    plain = grade_once(ROOT / "submissions" / "kv2154.py")
    by_id = {c.id: c.score for q in plain.questions for c in q.checks}
    assert {c.id: c.score for q in result.questions for c in q.checks if not c.id.startswith("Q2.dataset")} == {
        k: v for k, v in by_id.items() if not k.startswith("Q2.dataset")}  # Q2's printed figures use other images
