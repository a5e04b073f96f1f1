"""`grade gradescope --out autograder.zip`: a Gradescope autograder bundle of this grader.

The zip, unpacked by Gradescope into /autograder/source:
  setup.sh        installs Python >= 3.10 and bubblewrap (apt) and this grader from grader-src/ into
                  /autograder/venv
  run_autograder  grades /autograder/submission into /autograder/results/results.json (grader.gradescope_run)
  grader-src/     this project's source (pyproject.toml, grader/, reference/ with the MNIST sample)
  rubric.yaml     the rubric to grade with
  mnist.npz       only with --mnist: the data to grade with (else the bundled sample)
  bundle.json     names the rubric and data files for grader.gradescope_run
AUTOGRADER_ROOT (default /autograder) moves every path, and AUTOGRADER_PYTHON names the interpreter, so
the scripts can run in a temporary folder laid out like /autograder.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from grader import __version__

DIST_NAME = "mnist-backprop-grader"
SKIP_NAMES = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # zip entries get one date: the same inputs make the same bytes

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this as /autograder/run_autograder; AUTOGRADER_ROOT and AUTOGRADER_PYTHON move it for tests.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"; [ -x "$PY" ] || PY=python3
cd "$ROOT" && exec "$PY" -m grader.gradescope_run --bundle "$ROOT/source" --submission "$ROOT/submission" \\
    --results "$ROOT/results"
"""

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu base image).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$(cd "$(dirname "$0")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

modern_python() {  # the first python >= 3.10 with venv, or nothing
    for py in python3.13 python3.12 python3.11 python3.10 python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys, venv, ensurepip; \\
                sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
            command -v "$py"; return 0
        fi
    done
}

PYTHON="$(modern_python || true)"
if [ -z "$PYTHON" ]; then
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates util-linux
    PYTHON="$(modern_python || true)"
fi
if [ -z "$PYTHON" ]; then  # e.g. Ubuntu 20.04: python3 is 3.8, 3.11 comes from the deadsnakes PPA
    apt-get install -y --no-install-recommends software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa && apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
    PYTHON="$(modern_python || true)"
fi
[ -n "$PYTHON" ] || { echo "setup.sh: no Python >= 3.10 with venv could be installed" >&2; exit 1; }

# bubblewrap builds each sandbox's filesystem from nothing (deny by default); setpriv (util-linux) drops the
# child to its own uid. Without them the grader falls back to hiding paths, and `grade --doctor` says so.
if ! command -v bwrap >/dev/null 2>&1 || ! command -v setpriv >/dev/null 2>&1; then
    (apt-get update && apt-get install -y --no-install-recommends bubblewrap util-linux) \\
        || echo "setup.sh: could not install bubblewrap: the sandbox will use its fallback isolation" >&2
fi

"$PYTHON" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --upgrade pip
"$ROOT/venv/bin/python" -m pip install "$SOURCE/grader-src"
# The sandboxed child runs as an unprivileged uid: it must be able to read and run the venv's Python.
chmod -R a+rX "$ROOT/venv"
chmod +x "$ROOT/run_autograder" "$SOURCE/run_autograder" 2>/dev/null || true
"$ROOT/venv/bin/python" -c "import grader, reference.mnist; print('grader', grader.__version__, 'installed')"
"$ROOT/venv/bin/python" -m grader --doctor || echo "setup.sh: grade --doctor found a protection missing" >&2
# MNIST validated and cut once here, not in every submission's run (0.5 s each).
"$ROOT/venv/bin/python" -m grader.gradescope_run --bundle "$SOURCE" --prepare \
    || echo "setup.sh: the grading data could not be prepared ahead: each run prepares it" >&2
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade gradescope",
        description="Build a Gradescope autograder zip (setup.sh, run_autograder, the grader's source, the "
        "rubric and the MNIST data).")
    p.add_argument("--out", default="autograder.zip", help="the zip to write (default: autograder.zip)")
    p.add_argument("--rubric", default=None, help="rubric.yaml to bundle (default: the shipped one)")
    p.add_argument("--mnist", default=None, help="MNIST npz (keras layout) to bundle (default: none, the "
                   "grader's own 5,000/1,000-digit sample is used)")
    return p


def project_root() -> Path:
    """The folder holding the grader/ and reference/ packages."""
    import grader

    return Path(grader.__file__).resolve().parent.parent


def package_files(root: Path, package: str) -> Iterator[tuple[Path, str]]:
    """(file, path in the bundle) for every file of one package, caches skipped."""
    base = root / package
    for f in sorted(base.rglob("*")):
        parts = f.relative_to(base).parts
        if f.is_file() and not SKIP_NAMES.intersection(parts) and f.suffix not in SKIP_SUFFIXES:
            yield f, f"grader-src/{package}/{f.relative_to(base).as_posix()}"


def project_metadata(root: Path) -> dict[str, str]:
    """pyproject.toml and README.md for grader-src/: the project's own, or written from installed metadata."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DIST_NAME}"' in pyproject.read_text(encoding="utf-8"):
        readme = root / "README.md"
        return {"pyproject.toml": pyproject.read_text(encoding="utf-8"),
                "README.md": readme.read_text(encoding="utf-8") if readme.is_file() else "# grader\n"}
    return {"pyproject.toml": generated_pyproject(), "README.md": "# grader\n"}


def generated_pyproject() -> str:
    """A pyproject.toml for the bundled source when the grader was installed from a wheel."""
    from importlib.metadata import requires

    deps = [r for r in (requires(DIST_NAME) or []) if "extra ==" not in r]
    return "\n".join([
        '[build-system]', 'requires = ["setuptools>=64"]', 'build-backend = "setuptools.build_meta"', '',
        '[project]', f'name = "{DIST_NAME}"', f'version = "{__version__}"', 'readme = "README.md"',
        'requires-python = ">=3.10"', f"dependencies = {json.dumps(deps)}", '',
        '[tool.setuptools.packages.find]', 'include = ["grader*", "reference*"]', '',
        '[tool.setuptools.package-data]',
        'grader = ["*.yaml", "report/templates/*", "sandbox/shims/**/*", "sandbox/*.py"]',
        'reference = ["data/*.npz"]', '',
    ])


def add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    """One zip entry with a fixed date and Unix permissions (755 for scripts, else 644)."""
    info = zipfile.ZipInfo(name, FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
    zf.writestr(info, data)


def build_bundle(out: Path, rubric_path: str | None = None, mnist_path: str | None = None) -> dict[str, int]:
    """Write the autograder zip to out (atomically); returns {"files": n, "bytes": size of the zip}."""
    from grader.rubric import DEFAULT_RUBRIC, load_rubric
    from reference.mnist import read_npz

    rubric_file = Path(rubric_path) if rubric_path else DEFAULT_RUBRIC
    load_rubric(rubric_file)  # raises RubricError before anything is written
    if mnist_path:
        read_npz(mnist_path)  # raises MnistError naming the problem
    root = project_root()
    manifest = {"grader_version": __version__, "rubric": "rubric.yaml",
                "mnist": "mnist.npz" if mnist_path else None}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        add(zf, "setup.sh", SETUP_SH.encode(), executable=True)
        add(zf, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        add(zf, "bundle.json", (json.dumps(manifest, indent=2) + "\n").encode())
        add(zf, "rubric.yaml", rubric_file.read_bytes())
        if mnist_path:
            add(zf, "mnist.npz", Path(mnist_path).read_bytes())
        for name, text in project_metadata(root).items():
            add(zf, f"grader-src/{name}", text.encode())
        for package in ("grader", "reference"):
            for f, arcname in package_files(root, package):
                add(zf, arcname, f.read_bytes())
        count = len(zf.infolist())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(out)
    return {"files": count, "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    from grader.rubric import RubricError
    from reference.mnist import MnistError

    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        info = build_bundle(Path(args.out), args.rubric, args.mnist)
    except (RubricError, MnistError, OSError) as exc:
        print(f"grade gradescope: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out}: {info['files']} files, {info['bytes'] / 1e6:.1f} MB. Upload it under "
          "Configure Autograder (Ubuntu 22.04 base image); it grades one .py or .ipynb per submission.")
    return 0
