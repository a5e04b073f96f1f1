"""Load a submission (.py or .ipynb) as the cells a notebook would run, in order.

A `.py` with Jupyter export markers (`# In[ ]:`, `# %%`) is split at the markers; a plain `.py` becomes
one cell per top-level statement (decorators belong to their def); a `.py` that does not parse as a whole
is split at column-0 lines so that only the broken block fails. A notebook gives its code cells. IPython
magics and shell lines (`%...`, `!...`, `%%` cells) become blank lines, so line numbers stay right.
Nothing here executes student code.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

MAX_SOURCE_BYTES = 5 * 1024 * 1024  # of code
MAX_NOTEBOOK_BYTES = 200 * 1024 * 1024  # of a whole notebook: saved outputs (plots) can be large
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
    if suffix == ".ipynb":
        return _load_notebook(name, path, raw)
    try:
        text = _decode_python(raw)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return NotGradable(name, path, f"{path.name} is not readable text: {exc}")
    return Submission(name, path, tuple(python_cells(text)))


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
