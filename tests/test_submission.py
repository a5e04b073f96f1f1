"""Loading submissions into cells: .py (markers, statements, broken files) and notebooks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from grader.submission import Cell, NotGradable, Submission, load_submission, python_cells, strip_magics

HOSTILE = Path(__file__).parent / "hostile"
FIXTURES = Path(__file__).parent / "fixtures_sandbox"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _line_of(cell: Cell, needle: str) -> int:
    """The file line number of the first line of `cell` containing `needle`."""
    for offset, line in enumerate(cell.source.split("\n")):
        if needle in line:
            return cell.first_line + offset
    raise AssertionError(f"{needle!r} not in {cell}")


def test_name_is_the_file_stem(tmp_path):
    sub = load_submission(_write(tmp_path, "kv2154.py", "x = 1\n"))
    assert isinstance(sub, Submission) and sub.name == "kv2154" and sub.path.name == "kv2154.py"


def test_plain_py_gives_one_cell_per_top_level_statement_with_decorators_on_their_def(tmp_path):
    text = "import numpy as np\n\n@staticmethod\ndef f(a,\n      b=2):\n    return a\n\nx = f(1)\n"
    sub = load_submission(_write(tmp_path, "s.py", text))
    assert [c.first_line for c in sub.cells] == [1, 3, 8]
    assert sub.cells[1].source.startswith("@staticmethod") and sub.cells[1].label == "lines 3-6"
    assert [c.index for c in sub.cells] == [0, 1, 2]


def test_statements_sharing_a_line_stay_in_one_cell():
    cells = python_cells("a = 1; b = 2\nc = 3\n")
    assert [c.source for c in cells] == ["a = 1; b = 2", "c = 3"]


def test_jupyter_export_markers_split_cells_and_keep_file_line_numbers():
    text = ("#!/usr/bin/env python\n# In[1]:\n\nimport os\n\n\n# In[ ]:\n\ndef f():\n    return 1\n"
            "# %%\nz = 2\n")
    cells = python_cells(text)
    assert [c.label.split(" (")[0] for c in cells] == ["cell 1", "cell 2", "cell 3", "cell 4"]
    lines = text.split("\n")
    for cell in cells:
        for offset, line in enumerate(cell.source.split("\n")):
            assert lines[cell.first_line - 1 + offset] == line
    assert _line_of(cells[2], "def f") == 9


def test_magics_and_shell_lines_become_blank_lines():
    assert strip_magics("%matplotlib inline\nx = 1\n  !pip install numpy\ny = 2") == "\nx = 1\n\ny = 2"
    assert strip_magics("%%bash\necho hi\n") == "\n\n"
    assert strip_magics("x = 100 % 7") == "x = 100 % 7"


def test_py_with_magics_only_strips_them_when_it_does_not_parse_otherwise(tmp_path):
    sub = load_submission(_write(tmp_path, "m.py", "%matplotlib inline\nimport numpy\nx = (1\n% 2)\n"))
    assert [c.source for c in sub.cells] == ["import numpy", "x = (1\n% 2)"]
    assert sub.cells[0].first_line == 2


def test_unparseable_py_falls_back_so_only_the_broken_block_fails():
    sub = load_submission(HOSTILE / "syntax_error_block.py")
    sources = [c.source for c in sub.cells]
    broken = [c for c in sub.cells if "def broken" in c.source]
    assert len(broken) == 1 and "def good" not in broken[0].source and "after" not in broken[0].source
    assert any(s.startswith("def good") for s in sources) and any(s.startswith("after =") for s in sources)
    assert broken[0].first_line == 9


def test_fallback_keeps_multiline_strings_at_column_zero_with_their_statement():
    text = 'doc = """\nfirst\nsecond\n"""\ndef bad(:\n    pass\nz = 1\n'
    cells = python_cells(text)
    assert cells[0].source == 'doc = """\nfirst\nsecond\n"""'
    assert [c.first_line for c in cells] == [1, 5, 7]


def test_notebook_gives_code_cells_with_magics_dropped_and_positions_as_labels():
    sub = load_submission(HOSTILE / "syntax_error_cell.ipynb")
    assert isinstance(sub, Submission) and sub.is_notebook
    assert [c.label for c in sub.cells] == ["cell 2", "cell 3", "cell 5"]  # the %%bash cell is dropped
    assert sub.cells[0].source == "\nimport numpy as np\n\nvalue = 1"
    assert all(c.first_line == 1 for c in sub.cells)
    assert sub.filename_for(sub.cells[1]) == "syntax_error_cell.ipynb cell 3"


def test_notebook_source_given_as_a_list_of_lines_is_joined(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "execution_count": None,
                     "source": ["x = 1\n", "y = 2\n"]}]}
    sub = load_submission(_write(tmp_path, "n.ipynb", json.dumps(nb)))
    assert isinstance(sub, Submission) and sub.cells[0].source == "x = 1\ny = 2\n"


def test_notebook_written_by_nbformat_round_trips(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_markdown_cell("hi"),
                nbformat.v4.new_code_cell("")]
    path = tmp_path / "r.ipynb"
    nbformat.write(nb, path)
    sub = load_submission(path)
    assert [(c.source, c.label) for c in sub.cells] == [("a = 1", "cell 1")]


@pytest.mark.parametrize("name, reason", [
    ("malformed_notebook.ipynb", "not valid JSON"),
    ("not_a_notebook.ipynb", "not a Jupyter notebook"),
])
def test_broken_notebooks_are_not_gradable_with_a_clear_reason(name, reason):
    result = load_submission(HOSTILE / name)
    assert isinstance(result, NotGradable) and reason in result.reason and result.name == Path(name).stem


def test_other_file_types_and_binary_files_are_not_gradable(tmp_path):
    assert "unsupported file type" in load_submission(_write(tmp_path, "a.txt", "x")).reason
    (tmp_path / "b.py").write_bytes(b"\xff\xfe\x00bad")
    assert isinstance(load_submission(tmp_path / "b.py"), NotGradable)
    assert isinstance(load_submission(tmp_path / "missing.py"), NotGradable)


def test_handout_fixtures_load_as_gradable_submissions():
    rebinding = load_submission(FIXTURES / "handout_rebinding.py")
    inplace = load_submission(FIXTURES / "handout_inplace.py")
    assert isinstance(rebinding, Submission) and len(rebinding.cells) > 10
    assert isinstance(inplace, Submission) and len(inplace.cells) == 4
    assert "%matplotlib" not in inplace.cells[1].source


def test_a_notebook_made_large_by_saved_outputs_is_still_loaded(tmp_path):
    import nbformat

    cell = nbformat.v4.new_code_cell("weights = 1")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "A" * (8 * 1024 * 1024)})]
    path = tmp_path / "big.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert path.stat().st_size > 8 * 1024 * 1024
    loaded = load_submission(path)
    assert [c.source for c in loaded.cells] == ["weights = 1"]


def test_help_lines_go_and_a_timed_statement_stays_as_ipython_runs_it():
    cell = "np.random.normal?\nweights = [1]\n??len\n%time biases = [0]\n  %timeit f()\nx = a if b else c"
    assert strip_magics(cell) == "\nweights = [1]\n\nbiases = [0]\n\nx = a if b else c"
    assert strip_magics("for i in range(2):\n    %time y = i\n    x?") == "for i in range(2):\n    y = i\n"
    assert strip_magics('s = """\nx?\n"""') == 's = """\nx?\n"""'  # inside a string: not a line of its own


# ------------------------------------------------------------------ hostile sources (tests/fixtures/attacks)


def _magic_lines_blanked_one_prefix_at_a_time(source: str) -> str:
    """The definition strip_magics follows, the slow way (each magic line's prefix tokenized on its own)."""
    import io
    import tokenize

    from grader.submission import _HELP, _MAGIC, _TIMED

    lines = source.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
    if lines[first].lstrip().startswith("%%"):
        if lines[first].split()[0] not in ("%%time", "%%capture"):
            return "\n" * (len(lines) - 1)
        lines[first] = ""
    for i, line in enumerate(lines):
        if _MAGIC.match(line) or _HELP.match(line):
            try:
                for _ in tokenize.generate_tokens(io.StringIO("\n".join(lines[:i]) + "\n").readline):
                    pass
            except tokenize.TokenError:
                continue
            except (SyntaxError, ValueError):
                pass
            timed = _TIMED.match(line)
            lines[i] = timed.group(1) + timed.group(2) if timed else ""
    return "\n".join(lines)


def test_magic_lines_are_blanked_where_a_statement_could_start_as_one_prefix_at_a_time_would():
    import random

    pieces = ["%a", "!pip install x", "x = (", ")", "y = 1", "  %b", "'''", '"""', "def f():", "    return 1", "\\",
              "x = 1 + \\", "# c", "", "%%time", "!echo \"it's\"", "[1,", "2]", "if x:", "     %c", "else:",
              "s = 'abc", "}", "%matplotlib inline", "\tq", "x = '''a", "b'''", "f(%d)", "!ls (", "%%capture", "!",
              "%time x = (", "  %time y = 1", "np.random.normal?", "??len", "f()?"]
    rng = random.Random(7)
    for _ in range(3000):
        source = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert strip_magics(source) == _magic_lines_blanked_one_prefix_at_a_time(source), repr(source)


def test_a_file_of_forty_thousand_magic_lines_is_split_in_one_pass(tmp_path):
    """attacks/magic_flood.py: 120 KB that held a grading worker for many minutes (each line's prefix tokenized)."""
    import subprocess
    import sys

    script = ("from grader.submission import load_submission; import sys; "
              "print(len(load_submission(sys.argv[1]).cells))")
    path = Path(__file__).parent / "fixtures" / "attacks" / "magic_flood.py"
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0 and int(run.stdout) >= 2, run.stderr


def test_nesting_too_deep_for_pythons_parser_fails_only_its_own_block():
    """attacks/deep_nesting.py: `not not ... 1` 100,000 deep made the parser raise MemoryError in the grader
    (a 'grader failure' of 0/0); Python cannot compile that statement either, so only its block fails."""
    source = "a = 1\n\nb = " + "not " * 100_000 + "1\n\nc = 3\n"
    cells = python_cells(source)
    assert [c.first_line for c in cells] == [1, 3, 5]
    assert cells[0].source == "a = 1" and cells[2].source == "c = 3"


def test_a_file_parsing_would_take_gigabytes_for_is_split_outside_the_grader_and_refused(tmp_path):
    """5 MB of one-line statements made Python's parser hold 3 GB in the grading process, and gave 1.3 million
    cells (each a request to the sandbox): a file larger than a homework is split in a child process under a
    memory limit, and more than MAX_CELLS statements are not gradable, saying so."""
    import subprocess
    import sys

    path = tmp_path / "many_statements.py"
    path.write_text("a=1\n" * 1_290_000)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, from a large forking parent such as pytest
    script = ("import sys; from pathlib import Path; from grader.submission import load_submission; "
              "r = load_submission(sys.argv[1]); "
              "hwm = [ln for ln in Path('/proc/self/status').read_text().splitlines() if ln.startswith('VmHWM')]; "
              "print(int(hwm[0].split()[1]) // 1024); print(r.reason)")
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    own_mb, reason = run.stdout.splitlines()[:2]
    assert "1,290,000 top-level statements, more than the grader runs (20,000)" in reason, run.stdout + run.stderr
    assert int(own_mb) < 300, own_mb  # the grader's own peak; the child held up to 1 GB


def test_a_larger_file_is_split_the_same_in_a_child(tmp_path):
    from grader import submission

    source = (Path(__file__).parent / "fixtures" / "attacks" / "good.py").read_text(encoding="utf-8")
    path = tmp_path / "padded.py"
    path.write_text(source + "\n" + "# padding\n" * 40_000)
    assert path.stat().st_size > submission.IN_PROCESS_BYTES
    here = submission._split(path.stem, path, path.read_bytes())
    assert load_submission(path) == here and len(here.cells) > 10


def test_a_notebook_with_plots_is_split_here_and_one_of_many_json_objects_in_a_child():
    from grader.submission import IN_PROCESS_NOTEBOOK_OBJECTS, _small_enough

    plots = b'{"cells": [{"outputs": [{"data": {"image/png": "' + b"A" * 2_000_000 + b'"}}]}]}'
    assert _small_enough(plots, ".ipynb") and not _small_enough(plots, ".py")
    many = b'{"outputs": [' + b'{"text": "a"},' * (IN_PROCESS_NOTEBOOK_OBJECTS + 1) + b"{}]}"
    assert len(many) < 1_000_000 and not _small_enough(many, ".ipynb")


def test_the_splitting_child_dies_with_a_killed_grader(tmp_path):
    """A file larger than a homework is split in a child process: a grader killed meanwhile takes it along."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / f"slow_to_split_{os.getpid()}.py"
    path.write_text("a=1\n" * 1_000_000)  # seconds of parsing in the child
    grader = subprocess.Popen([sys.executable, "-c", "import sys; from grader.submission import load_submission; "
                               "load_submission(sys.argv[1])", str(path)], cwd=Path(__file__).resolve().parents[1])

    def splitting() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and str(path).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
        return [pid for pid in found if pid != grader.pid]

    deadline = time.monotonic() + 30
    while not splitting() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert splitting(), "the splitting child never started"
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 5
    while splitting() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not splitting()
