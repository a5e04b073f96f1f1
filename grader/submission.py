"""Load a submission (.py or .ipynb) as the cells a notebook would run, in order.

A `.py` with Jupyter export markers (`# In[ ]:`, `# %%`) is split at the markers; a plain `.py` becomes
one cell per top-level statement (decorators belong to their def); a `.py` that does not parse as a whole
is split at column-0 lines so that only the broken block fails. A notebook gives its code cells. IPython
magics and shell lines (`%...`, `!...`, `%%` cells) become blank lines, so line numbers stay right.
Nothing here executes student code. Parsing is not free, though: 5 MB of `a=1` lines make Python's parser hold
3 GB, and 200 MB of notebook JSON as much; so a file larger than a homework (IN_PROCESS_BYTES) is split in a
child process under a memory and CPU limit (run as a script: `python -I submission.py FILE`), never in the grader.
"""

from __future__ import annotations

import ast
import io
import json
import re
import resource
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

MAX_SOURCE_BYTES = 5 * 1024 * 1024  # of code
MAX_NOTEBOOK_BYTES = 200 * 1024 * 1024  # of a whole notebook: saved outputs (plots) can be large
IN_PROCESS_BYTES = 256 * 1024  # larger files are split into cells in a child process, within these limits:
IN_PROCESS_NOTEBOOK_BYTES = 4 * 1024 * 1024  # a notebook (JSON, its code not parsed) with plots, but few
IN_PROCESS_NOTEBOOK_OBJECTS = 50_000  # objects and lists, is read here: ~0.1 s less than a child
SPLIT_MEMORY_BYTES = 1024 * 1024 * 1024
SPLIT_CPU_S = 60
MAX_CELLS = 20_000  # a 10,000-cell notebook is graded in about 8 s; each cell is a request to the sandbox
_MARKER = re.compile(r"^#\s*(In\s*\[[\d\s]*\]\s*:|%%)")
_MAGIC = re.compile(r"^\s*[%!]")
_TIMED = re.compile(r"^(\s*)%time\s+(\S.*)$")  # `%time stmt`: IPython runs stmt once (not %timeit)
_HELP = re.compile(r"^\s*(\?{1,2}[\w.]+|[\w.]+(\(\))?\?{1,2})\s*$")  # `np.random.normal?`, `??len`: help
_CONTINUATION = re.compile(r"^(else\b|elif\b|except\b|finally\b|case\b|[)\]}])")
_MERGE_LOOKAHEAD = 12
BODY_RUNNING_CELL_MAGICS = {"%%time", "%%capture"}


@dataclass(frozen=True)
class Cell:
    """One unit of execution: its source and where it starts in the student's file (1-based line)."""

    index: int
    source: str
    first_line: int
    label: str  # "cell 3" (notebook), "cell 2 (lines 10-25)" (.py with markers), "lines 30-52" (.py)


@dataclass(frozen=True)
class Submission:
    """A student's file as cells; `name` is the file stem (e.g. "kv2154")."""

    name: str
    path: Path
    cells: tuple[Cell, ...]

    @property
    def is_notebook(self) -> bool:
        return self.path.suffix.lower() == ".ipynb"

    def filename_for(self, cell: Cell) -> str:
        """The file name tracebacks show for `cell` ("kv2154.py", or "kv2154.ipynb cell 3")."""
        return f"{self.path.name} {cell.label}" if self.is_notebook else self.path.name


@dataclass(frozen=True)
class NotGradable:
    """A file that cannot be turned into cells at all, and why."""

    name: str
    path: Path
    reason: str


def load_submission(path: str | Path) -> Submission | NotGradable:
    """Read a .py or .ipynb file into cells, or say why it cannot be graded."""
    path = Path(path)
    name = path.stem
    suffix = path.suffix.lower()
    if suffix not in (".py", ".ipynb"):
        return NotGradable(name, path, f"unsupported file type {path.suffix!r}: hand in a .py or .ipynb file")
    try:
        raw = _read_bounded(path)
    except OSError as exc:
        return NotGradable(name, path, f"cannot read {path.name}: {exc.strerror or exc}")
    if raw is None:
        limit = MAX_NOTEBOOK_BYTES if suffix == ".ipynb" else MAX_SOURCE_BYTES
        return NotGradable(name, path, f"{path.name} is larger than {limit // 1024 // 1024} MB")
    if not _small_enough(raw, suffix):
        return _split_in_child(name, path)
    return _split(name, path, raw)


def _small_enough(raw: bytes, suffix: str) -> bool:
    """True when splitting the file here costs the grader little memory whatever it holds: a .py of a homework's
    size (its parse grows with its statements), a notebook of a few MB and few JSON objects (its saved plots are
    long strings, cheap to read)."""
    if suffix == ".ipynb":
        objects = raw.count(b"{") + raw.count(b"[")
        return len(raw) <= IN_PROCESS_NOTEBOOK_BYTES and objects <= IN_PROCESS_NOTEBOOK_OBJECTS
    return len(raw) <= IN_PROCESS_BYTES


def _split(name: str, path: Path, raw: bytes) -> Submission | NotGradable:
    """The file's bytes as cells (in this process), or why not; at most MAX_CELLS of them."""
    if path.suffix.lower() == ".ipynb":
        loaded = _load_notebook(name, path, raw)
    else:
        try:
            text = _decode_python(raw)
        except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
            return NotGradable(name, path, f"{path.name} is not readable text: {exc}")
        loaded = Submission(name, path, tuple(python_cells(text)))
    if isinstance(loaded, Submission) and len(loaded.cells) > MAX_CELLS:
        what = "cells" if loaded.is_notebook else "top-level statements"
        return NotGradable(name, path, f"{path.name} has {len(loaded.cells):,} {what}, more than the grader runs "
                                       f"({MAX_CELLS:,}): each is a request to the sandbox")
    return loaded


def _split_in_child(name: str, path: Path) -> Submission | NotGradable:
    """_split run as `python -I submission.py FILE` under SPLIT_MEMORY_BYTES and SPLIT_CPU_S: a file that needs
    more to parse (deep nesting, millions of statements or JSON objects) is not gradable, and the grader's memory
    stays its own."""
    from grader import lifetime

    too_much = (f"{path.name} is too large or too complex to split into cells within the grader's limits "
                f"({SPLIT_MEMORY_BYTES // 2**20} MB of memory, {SPLIT_CPU_S} s)")
    try:
        run = subprocess.run([sys.executable, "-I", str(Path(__file__).resolve()), str(path)], capture_output=True,
                             timeout=2 * SPLIT_CPU_S, stdin=subprocess.DEVNULL,
                             preexec_fn=lifetime.die_with_parent())  # a killed grader takes it along
    except subprocess.TimeoutExpired:
        return NotGradable(name, path, too_much)
    if run.returncode != 0:
        return NotGradable(name, path, too_much)
    try:
        split = json.loads(run.stdout)
        if "reason" in split:
            return NotGradable(name, path, str(split["reason"]))
        cells = tuple(Cell(i, str(source), int(first), str(label))
                      for i, (source, first, label) in enumerate(split["cells"]))
    except (ValueError, KeyError, TypeError):
        return NotGradable(name, path, too_much)
    return Submission(name, path, cells)


def _read_bounded(path: Path) -> bytes | None:
    limit = MAX_NOTEBOOK_BYTES if path.suffix.lower() == ".ipynb" else MAX_SOURCE_BYTES
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    return None if len(raw) > limit else raw


def _decode_python(raw: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    return raw.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")


def strip_magics(source: str) -> str:
    """Blank out IPython magics, shell lines and help lines (`obj?`), a whole `%%` cell included, keeping the line
    count; the body of %%time and %%capture cells and the statement of a `%time` line, which IPython runs as
    ordinary code, stay.

    A line starting with % or ! counts as a magic only where a statement could start (not inside
    brackets, a string or after a backslash), so `(a\n% b)` is left alone.
    """
    lines = source.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
    if lines[first].lstrip().startswith("%%"):
        if lines[first].split()[0] not in BODY_RUNNING_CELL_MAGICS:
            return "\n" * (len(lines) - 1)
        lines[first] = ""  # %%time, %%capture: Jupyter runs the body in the notebook's namespace
    _blank_magic_lines(lines)
    return "\n".join(lines)


def _blank_magic_lines(lines: list[str]) -> None:
    """Blank each magic or help line (keeping a `%time` line's statement) where a statement could start (the code
    before it complete: no open bracket, string or continuation), deciding line by line as one tokenizer reads
    them, so that a changed line is what the next is read after. One pass: tokenizing the code before each magic
    line again was quadratic (a 120 KB file of magic lines held a grading worker for many minutes)."""
    ended: set[int] = set()  # rows (1-based) ended by a NEWLINE or NL token
    depth = 0  # brackets open; below 0 after a stray closer, when the tokenizer treats later lines as continued
    broken = False  # bad indentation stopped the tokenizer: from there on every line may start a statement
    position = 0

    def readline() -> str:
        nonlocal position
        if position >= len(lines):
            return ""
        i = position
        position += 1
        line = lines[i]
        if (broken or i == 0 or (i in ended and depth == 0)) and (_MAGIC.match(line) or _HELP.match(line)):
            timed = _TIMED.match(line)
            lines[i] = timed.group(1) + timed.group(2) if timed else ""
        return lines[i] + "\n"

    try:
        for token in tokenize.generate_tokens(readline):
            if token.type == tokenize.OP and token.string in "([{":
                depth += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                depth -= 1
            elif token.type in (tokenize.NEWLINE, tokenize.NL):
                ended.add(token.start[0])
    except tokenize.TokenError:  # the end inside a bracket, string or continuation: every line was read
        pass
    except (SyntaxError, ValueError):  # e.g. bad indentation: the lines after it count as statement starts
        broken = True
        while position < len(lines):
            readline()


def python_cells(text: str) -> list[Cell]:
    """Split a .py source into cells: at export markers if any, else one per top-level statement."""
    lines = text.split("\n")
    if any(_MARKER.match(ln) for ln in lines):
        return _marker_cells(lines)
    if not _parses(text):
        stripped = strip_magics(text)
        if _parses(stripped):
            text = stripped
        else:
            lines = stripped.split("\n")
            return _labelled(lines, _fallback_blocks(lines))
    return _labelled(text.split("\n"), _statement_blocks(text, 1))


def _parses(source: str) -> bool:
    """True when Python can parse the source (nesting too deep for its parser is a failure to parse, as when
    Python runs it: MemoryError or RecursionError)."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _marker_cells(lines: list[str]) -> list[Cell]:
    starts = [i for i, ln in enumerate(lines) if _MARKER.match(ln)]
    chunks = [(0, starts[0])] if starts[0] > 0 else []
    chunks += [(s + 1, e) for s, e in zip(starts, starts[1:] + [len(lines)], strict=True)]
    cells: list[Cell] = []
    for begin, end in chunks:
        source = strip_magics("\n".join(lines[begin:end]))
        if not source.strip():
            continue
        last = begin + len(source.rstrip().split("\n"))
        number = len(cells) + 1
        cells.append(Cell(len(cells), source, begin + 1, f"cell {number} (lines {begin + 1}-{last})"))
    return cells


def _statement_blocks(source: str, first_line: int) -> list[tuple[int, int]]:
    """(first, last) line numbers of the top-level statements; statements sharing a line are merged."""
    tree = ast.parse(source)
    blocks: list[tuple[int, int]] = []
    for stmt in tree.body:
        decorators = getattr(stmt, "decorator_list", [])
        start = min([stmt.lineno] + [d.lineno for d in decorators])
        end = stmt.end_lineno or stmt.lineno
        start, end = start + first_line - 1, end + first_line - 1
        if blocks and start <= blocks[-1][1]:
            blocks[-1] = (blocks[-1][0], max(end, blocks[-1][1]))
        else:
            blocks.append((start, end))
    return blocks


def _fallback_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """Column-0 blocks, merged with their neighbours while that makes them parse; broken ones stay alone."""
    raw = _column0_blocks(lines)
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(raw):
        for j in range(i, min(i + _MERGE_LOOKAHEAD, len(raw))):
            start, end = raw[i][0], raw[j][1]
            source = "\n".join(lines[start - 1:end])
            if _parses(source):
                out += _statement_blocks(source, start)
                i = j + 1
                break
        else:
            out.append(raw[i])
            i += 1
    return out


def _column0_blocks(lines: list[str]) -> list[tuple[int, int]]:
    starts: list[int] = []
    after_decorator = False
    for number, line in enumerate(lines, start=1):
        opens = bool(line) and not line[0].isspace() and not line.startswith("#")
        if opens and not after_decorator and not _CONTINUATION.match(line):
            starts.append(number)
        if line.strip():
            after_decorator = line.startswith("@")
    blocks = []
    for start, nxt in zip(starts, starts[1:] + [len(lines) + 1], strict=True):
        end = nxt - 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        blocks.append((start, end))
    return blocks


def _labelled(lines: list[str], blocks: list[tuple[int, int]]) -> list[Cell]:
    return [Cell(i, "\n".join(lines[s - 1:e]), s, f"line {s}" if s == e else f"lines {s}-{e}")
            for i, (s, e) in enumerate(blocks)]


def _load_notebook(name: str, path: Path, raw: bytes) -> Submission | NotGradable:
    import json

    import nbformat

    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return NotGradable(name, path, f"{path.name} is not a valid notebook: not valid JSON ({exc})")
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return NotGradable(name, path, f"{path.name} is not a Jupyter notebook: no list of cells")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:  # nbformat raises several types for malformed notebooks
        return NotGradable(name, path, f"{path.name} is not a valid notebook: {exc}")
    cells: list[Cell] = []
    for position, nb_cell in enumerate(nb.cells, start=1):
        if nb_cell.get("cell_type") != "code":
            continue
        source = nb_cell.get("source", "")
        if not isinstance(source, str):
            return NotGradable(name, path, f"{path.name}: cell {position} has no readable source")
        source = strip_magics(source.replace("\r\n", "\n"))
        if source.strip():
            cells.append(Cell(len(cells), source, 1, f"cell {position}"))
    if sum(len(c.source) for c in cells) > MAX_SOURCE_BYTES:
        return NotGradable(name, path, f"{path.name} has more than {MAX_SOURCE_BYTES // 1024 // 1024} MB of code")
    return Submission(name, path, tuple(cells))


if __name__ == "__main__":  # _split_in_child's child: one file's cells as JSON on stdout, within the limits
    resource.setrlimit(resource.RLIMIT_AS, (SPLIT_MEMORY_BYTES, SPLIT_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (SPLIT_CPU_S, SPLIT_CPU_S))
    _file = Path(sys.argv[1])
    _raw = _read_bounded(_file)
    _loaded = _split(_file.stem, _file, _raw) if _raw is not None else NotGradable(_file.stem, _file, "too large")
    json.dump({"reason": _loaded.reason} if isinstance(_loaded, NotGradable) else
              {"cells": [[c.source, c.first_line, c.label] for c in _loaded.cells]}, sys.stdout)
