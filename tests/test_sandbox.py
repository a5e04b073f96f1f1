"""The sandbox with real child processes: notebook semantics, calls with grader-chosen globals, values."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.results import RunError
from grader.sandbox import (
    Fingerprint,
    Limits,
    Opaque,
    Ref,
    Sandbox,
    SandboxData,
    SandboxFailure,
    bwrap,
    cgroups,
    protections,
)
from grader.sandbox.isolation import ChildUser, is_root
from grader.sandbox.values import ArrayReader, ArrayWriter
from grader.submission import Submission, load_submission
from reference import network

FIXTURES = Path(__file__).parent / "fixtures_sandbox"
LYING_HEADER = b"{'descr': '<f8', 'fortran_order': False, 'shape': (10000000,), }" + b" " * 5 + b"\n"
FAST = Limits(cell_timeout_s=20, call_timeout_s=10, total_timeout_s=120, output_kb=8)
needs_root = pytest.mark.skipif(not is_root(), reason="isolation needs root")
needs_bwrap = pytest.mark.skipif(not bwrap.status(is_root()).works, reason=bwrap.status(is_root()).reason)
# The bubblewrap view where it runs here, and the fallback (root only) always as root.
ENGINES = [pytest.param("bwrap", marks=needs_bwrap), "namespaces"]


@pytest.fixture(scope="module")
def data() -> SandboxData:
    """200 random training and 50 test images (uint8, 28x28), labels 0..9."""
    rng = np.random.default_rng(7)
    return SandboxData(rng.integers(0, 256, (200, 28, 28), dtype=np.uint8), rng.integers(0, 10, 200),
                       rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 10, 50))


def submission_of(tmp_path: Path, source: str, name: str = "student.py") -> Submission:
    path = tmp_path / name
    path.write_text(source)
    sub = load_submission(path)
    assert isinstance(sub, Submission)
    return sub


@pytest.fixture(scope="module")
def rebinding(data):
    """The handout-style student with (1, n) biases and rebound list items, cells already run."""
    sub = load_submission(FIXTURES / "handout_rebinding.py")
    with Sandbox(sub, data, FAST) as box:
        yield box, box.run_cells()


def canonical_params(seed: int = 3):
    """A non-saturated point: W1 small, so the gradient is not all zeros."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1 / 2400 ** 0.5, (784, 32)), rng.normal(0, 1 / 32 ** 0.5, (32, 32)),
               rng.normal(0, 1 / 32 ** 0.5, (32, 10))]
    biases = [rng.normal(0, 0.1, 32), rng.normal(0, 0.1, 32), rng.normal(0, 0.1, 10)]
    return weights, biases


# ----- notebook semantics -----

def test_handout_submission_runs_every_cell_and_prints_like_a_notebook(rebinding):
    _, log = rebinding
    assert [o.status for o in log.outcomes] == ["ok"] * len(log.outcomes) and log.errors == ()
    printed = "".join(o.stdout for o in log.outcomes)
    assert "Feeding forward all test data..." in printed and "Finished training." in printed


def initial_at(log, text):
    """The value recorded at the initialisation for the network entry reached as `text` (e.g. "weights[0]")."""
    return next(e.initial for e in log.network if text in e.texts)


def test_initial_params_are_the_initialisation_before_top_level_training(rebinding):
    box, log = rebinding
    expected_w, _ = network.init_params()
    assert log.initialised
    got_w = [initial_at(log, f"weights[{i}]") for i in range(3)]
    got_b = [initial_at(log, f"biases[{i}]") for i in range(3)]
    assert [w.shape for w in got_w] == [(784, 32), (32, 32), (32, 10)]
    assert [b.shape for b in got_b] == [(1, 32), (1, 32), (1, 10)]
    for w, e in zip(got_w, expected_w, strict=True):
        np.testing.assert_array_equal(w, e)
    trained = box.get(["weights"])["weights"]
    assert not np.array_equal(trained[0], expected_w[0])  # top-level training changed them afterwards


def test_the_tensorflow_stand_in_returns_the_graders_data(rebinding, data):
    box, _ = rebinding
    got = box.get(["x_train", "y_test"])
    np.testing.assert_array_equal(got["x_train"], data.x_train)
    np.testing.assert_array_equal(got["y_test"], data.y_test)


def test_namespace_describes_functions_and_arrays_without_values(rebinding):
    box, _ = rebinding
    symbols = box.namespace()
    step = symbols["train_one_sample"]
    assert step.kind == "function"
    assert [(p.name, p.has_default, p.default_repr) for p in step.signature] == [
        ("sample", False, None), ("y", False, None), ("learning_rate", True, "0.003")]
    assert symbols["x_train"].kind == "ndarray" and symbols["x_train"].shape == (200, 28, 28)
    assert symbols["x_train"].dtype == "uint8"
    assert symbols["weights"].kind == "list" and symbols["weights"].length == 3
    assert symbols["np"].kind == "module" and "__builtins__" not in symbols


# ----- calls with grader-chosen globals -----

def test_train_one_sample_with_graders_globals_matches_the_reference_with_row_biases(rebinding, data):
    box, _ = rebinding
    weights, biases = canonical_params()
    x = data.x_train[5].reshape(-1).astype(np.float64)
    res = box.call("train_one_sample", [x, 4], {"learning_rate": 1.0},
                   set_globals={"weights": weights, "biases": [b.reshape(1, -1) for b in biases]},
                   get_globals=["weights", "biases"])
    assert res.ok, res.error
    expected_w, expected_b = network.sgd_step(weights, biases, x, 4, 1.0)
    for got, want in zip(res.globals["weights"], expected_w, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for got, want in zip(res.globals["biases"], expected_b, strict=True):
        assert got.shape == (1, want.size)
        np.testing.assert_allclose(got.ravel(), want, rtol=1e-10, atol=1e-12)
    assert not any(np.shares_memory(g, w) for g, w in zip(res.globals["weights"], weights, strict=True))


def test_in_place_updates_are_read_back_and_arguments_after_the_call_too(data, tmp_path):
    sub = load_submission(FIXTURES / "handout_inplace.py")
    weights, biases = canonical_params(5)
    x = data.x_train[9].reshape(-1)
    with Sandbox(sub, data, FAST) as box:
        log = box.run_cells()
        assert [o.status for o in log.outcomes] == ["ok"] * 4
        assert [initial_at(log, f"biases[{i}]").shape for i in range(3)] == [(32,), (32,), (10,)]
        res = box.call("train_one_sample", [x, 7, 1e-3], set_globals={"weights": weights, "biases": biases},
                       get_globals=["weights", "biases"])
        expected_w, expected_b = network.sgd_step(weights, biases, x.astype(float), 7, 1e-3)
        for got, want in zip(res.globals["weights"] + res.globals["biases"], expected_w + expected_b,
                             strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
        scaled = box.call("scale_in_place", [np.ones(3)])
        assert scaled.value == 6.0


def test_the_graders_values_are_written_into_the_students_own_arrays_and_read_back(data):
    sub = load_submission(FIXTURES / "handout_inplace.py")
    weights, biases = canonical_params(5)
    x = data.x_train[9].reshape(-1)
    with Sandbox(sub, data, FAST) as box:
        log = box.run_cells()
        index = {text: e.index for e in log.network for text in e.texts}
        entries = [index[f"weights[{i}]"] for i in range(3)] + [index[f"biases[{i}]"] for i in range(3)]
        res = box.call("train_one_sample", [x, 7, 1e-3], set_params=dict(zip(entries, weights + biases, strict=True)),
                       get_params=entries)
        expected = network.sgd_step(weights, biases, x.astype(float), 7, 1e-3)
        for entry, want in zip(entries, expected[0] + expected[1], strict=True):
            np.testing.assert_allclose(res.params[entry], want, rtol=1e-10, atol=1e-13)
            assert res.rebound[entry] == ()  # updated in place: the same arrays
        b3 = index["biases[2]"]  # an argument that is the student's own array: mutated in place
        same = box.call("scale_in_place", [Ref(entry=b3)], set_params={b3: np.ones(10)}, get_params=[b3])
        assert same.ok and same.value == 20.0
        np.testing.assert_array_equal(same.params[b3], np.full(10, 2.0))


def test_recorder_captures_each_train_one_sample_call_of_an_epoch_and_runs_it(rebinding, data):
    box, _ = rebinding
    weights, biases = canonical_params()
    images, labels = data.x_train[:5], data.y_train[:5]
    res = box.call("train_one_epoch", [], set_globals={"weights": weights, "biases": biases,
                                                        "x_train": images, "y_train": labels},
                   get_globals=["weights"], record=("train_one_sample",))
    assert res.ok, res.error
    assert [r["function"] for r in res.recorded] == ["train_one_sample"] * 5
    for i, (record, image, label) in enumerate(zip(res.recorded, images, labels, strict=True)):
        args = record["arguments"]
        assert isinstance(args["sample"], Fingerprint) and args["sample"].matches(image)
        assert args["sample"].sum_sq == float((image.astype(np.float64) ** 2).sum())  # no uint8 wrap-around
        assert args["sample"].shape == (28, 28) and args["sample"].dtype == "uint8"
        assert not args["sample"].matches(images[(i + 1) % 5])
        assert args["y"] == int(label) and args["learning_rate"] == 0.003
    assert any(not np.array_equal(got, want) for got, want in zip(res.globals["weights"], weights, strict=True))
    assert "train_one_sample" in box.namespace() and box.namespace()["train_one_sample"].kind == "function"


def test_call_exception_comes_back_with_the_students_file_and_line(tmp_path):
    source = "import numpy as np\n\n\ndef f(a):\n    b = a + 1\n    return np.log(b) / 0 + [][3]\n"
    sub = submission_of(tmp_path, source)
    with Sandbox(sub, None, FAST) as box:
        box.run_cells()
        res = box.call("f", [1.0])
        missing = box.call("no_such_function")
    assert not res.ok and res.error.kind == "exception" and res.error.where == "call f"
    assert res.error.message.startswith("IndexError")
    assert 'File "student.py", line 6, in f' in res.error.traceback and "runner.py" not in res.error.traceback
    assert "/inside/" not in res.error.traceback  # none of the child's own frames
    assert not missing.ok and "no_such_function" in missing.error.message


def test_cell_errors_are_recorded_and_the_run_continues(tmp_path):
    sub = submission_of(tmp_path, "a = 1\nraise ValueError('boom')\nimport sys\nsys.exit(2)\nb = a + 1\n"
                                  "raise KeyboardInterrupt\nc = b + 1\n")
    with Sandbox(sub, None, FAST) as box:
        log = box.run_cells()
        values = box.get(["a", "b", "c"])
    assert [o.status for o in log.outcomes] == ["ok", "exception", "ok", "exit", "ok", "exception", "ok"]
    assert values == {"a": 1, "b": 2, "c": 3}
    boom = log.outcomes[1].error
    assert boom.where == "line 2" and 'File "student.py", line 2' in boom.traceback
    assert "sys.exit(2)" in log.outcomes[3].error.message and len(log.errors) == 3


def test_value_trees_round_trip_with_types_kept(tmp_path):
    sub = submission_of(tmp_path, "def echo(v):\n    return v\n")
    tree = {"list": [1, 2.5, None, True, "s"], "tuple": (np.arange(3), np.float32(1.5)),
            3: {"nested": [np.zeros((2, 0)), np.array([[1 + 2j]])]}, "nan": float("nan"),
            "ints": np.int64(7), "bool": np.bool_(True)}
    with Sandbox(sub, None, FAST) as box:
        box.run_cells()
        got = box.call("echo", [tree]).value
        weird = box.call("echo", [[np.array([1.0])]], set_globals={"echo": None})
    assert got["list"] == [1, 2.5, None, True, "s"]
    assert isinstance(got["tuple"], tuple) and got["tuple"][0].tolist() == [0, 1, 2]
    assert got["tuple"][1] == 1.5 and got[3]["nested"][0].shape == (2, 0)
    assert got[3]["nested"][1].dtype == np.complex128 and np.isnan(got["nan"])
    assert got["ints"] == 7 and got["bool"] is True
    assert not weird.ok and "not defined as a function" in weird.error.message


def test_unencodable_values_arrive_as_opaque(tmp_path):
    sub = submission_of(tmp_path, "import numpy as np\nclass Thing:\n    def __repr__(self):\n"
                                  "        return 'Thing()'\nthing = Thing()\nwords = np.array(['a', 'b'])\n"
                                  "loop = []\nloop.append(loop)\n")
    with Sandbox(sub, None, FAST) as box:
        box.run_cells()
        got = box.get(["thing", "words", "loop", "missing"])
    assert got["thing"] == Opaque("__main__.Thing", "Thing()")
    assert isinstance(got["words"], Opaque) and "numeric" in got["words"].repr
    assert isinstance(got["loop"][0], Opaque) and "missing" not in got


def test_runs_are_deterministic_numpy_and_random_are_seeded(tmp_path):
    source = "import random\nimport numpy as np\nr = (np.random.rand(3), random.random())\n"
    runs = []
    for _ in range(2):
        with Sandbox(submission_of(tmp_path, source), None, FAST) as box:
            box.run_cells()
            runs.append(box.get(["r"])["r"])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_student_environment_input_ipython_display_matplotlib_and_tensorflow_limits(tmp_path, data):
    source = ("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n"
              "get_ipython().run_line_magic('x', 'y')\ndisplay([1, 2])\nname = input('name? ')\n"
              "import tensorflow as tf\nmodel = tf.keras.Sequential()\n"
              "(a, b), (c, d) = tf.keras.datasets.mnist.load_data()\nfrom keras.datasets import cifar10\n"
              "from tensorflow.keras import layers\n")
    with Sandbox(submission_of(tmp_path, source), data, FAST) as box:
        log = box.run_cells()
    status = [o.status for o in log.outcomes]
    assert status == ["ok"] * 5 + ["exception", "ok", "exception", "ok", "exception", "exception"]
    assert log.outcomes[4].stdout == "[1, 2]\n"
    assert "EOFError" in log.outcomes[5].error.message
    for failed, name in ((7, "tensorflow.keras.Sequential"), (9, "keras.datasets.cifar10"),
                         (10, "tensorflow.keras.layers")):
        assert f"{name} is not available while grading" in log.outcomes[failed].error.message


def test_notebook_tracebacks_name_the_cell_and_its_own_line(tmp_path):
    sub = load_submission(Path(__file__).parent / "hostile" / "syntax_error_cell.ipynb")
    with Sandbox(sub, None, FAST) as box:
        log = box.run_cells()
        after = box.call("after")
    assert [o.status for o in log.outcomes] == ["ok", "exception", "exception"]
    syntax = log.outcomes[1].error
    assert syntax.where == "cell 3" and "SyntaxError" in syntax.message
    assert 'syntax_error_cell.ipynb cell 3", line 2' in syntax.traceback
    assert 'syntax_error_cell.ipynb cell 5", line 4' in log.outcomes[2].error.traceback
    assert after.value == 2


def test_output_is_bounded_per_cell_with_a_note(tmp_path):
    sub = submission_of(tmp_path, "for i in range(100000):\n    print('line', i)\nprint('short')\n")
    with Sandbox(sub, None, Limits(output_kb=1)) as box:
        log = box.run_cells()
    assert log.outcomes[0].stdout.startswith("line 0\nline 1\n") and len(log.outcomes[0].stdout) < 1200
    assert "characters of stdout were dropped" in log.outcomes[0].stdout
    assert log.outcomes[1].stdout == "short\n"


def test_call_time_out_restarts_the_child_and_replays_completed_cells(tmp_path):
    sub = submission_of(tmp_path, "import numpy as np\nstate = np.arange(3)\ncounter = [0]\n"
                                  "def hang():\n    while True:\n        pass\n"
                                  "def bump():\n    counter[0] += 1\n    return counter[0]\n")
    with Sandbox(sub, None, FAST) as box:
        box.run_cells()
        assert box.call("bump").value == 1
        hung = box.call("hang", timeout_s=1)
        assert not hung.ok and hung.timed_out and hung.error.kind == "timeout" and "1 s" in hung.error.message
        assert box.call("bump").value == 1  # a fresh child: cells replayed, calls are not
        np.testing.assert_array_equal(box.get(["state"])["state"], [0, 1, 2])


def test_total_time_limit_stops_further_requests(tmp_path):
    sub = submission_of(tmp_path, "while True:\n    pass\n")
    with Sandbox(sub, None, Limits(cell_timeout_s=5, total_timeout_s=1)) as box:
        log = box.run_cells()
        res = box.call("anything")
    assert log.outcomes[0].status == "timeout" and "total" in log.outcomes[0].error.message
    assert res.error.kind == "timeout" and "total time limit" in res.error.message


def test_not_isolated_mode_still_runs_and_says_so(tmp_path):
    sub = submission_of(tmp_path, "def f(x):\n    return x + 1\n")
    with Sandbox(sub, None, FAST, require_isolation=False) as box:
        box.run_cells()
        assert box.call("f", [1]).value == 2
        assert any("NOT isolated" in p for p in box.protections())


# ----- isolation -----

@needs_root
@pytest.mark.parametrize("engine", ENGINES)
def test_protections_are_verified_when_running_as_root(tmp_path, engine):
    source = "import os\nme = (os.getuid(), os.getgid(), os.getgroups(), os.getpid())\n"
    with Sandbox(submission_of(tmp_path, source), None, FAST, engine=engine) as box:
        box.run_cells()
        me = box.get(["me"])["me"]
        described = box.protections()
    assert me[0] != 0 and me[1] != 0 and me[2] == [] and me[3] == 1
    verified = [p for p in described if p.endswith("(verified)")]
    assert len(verified) >= 6 and all(p.endswith("(verified)") or p.startswith("NOT") for p in described)
    assert any("network" in p for p in protections())


@needs_root
@pytest.mark.parametrize("engine", ENGINES)
def test_a_protection_that_does_not_hold_fails_closed(tmp_path, engine):
    sub = submission_of(tmp_path, "x = 1\n")
    # as root in a user namespace, bwrap cannot even map uid 0: either way the child never runs
    with pytest.raises(SandboxFailure, match="root-only file|uid map"):
        with Sandbox(sub, None, FAST, child_user=ChildUser(0, 0), engine=engine):
            pass
    with pytest.raises(SandboxFailure, match="cannot hide"):
        with Sandbox(sub, None, FAST, hide=[sys.prefix], engine=engine):
            pass


@needs_root
@pytest.mark.parametrize("engine", ENGINES)
def test_the_probe_finds_only_the_runners_files_in_the_box_and_none_it_could_change(tmp_path, engine, monkeypatch):
    from grader.sandbox import start

    seen, real = {}, start.BoxStart._probe_problems
    monkeypatch.setattr(start.BoxStart, "_probe_problems",
                        lambda self, probe, config: seen.update(box=self, probe=probe, config=config) or real(
                            self, probe, config))
    with Sandbox(submission_of(tmp_path, "x = 1\n"), None, FAST, engine=engine):
        pass
    box, probe, config = seen["box"], seen["probe"], seen["config"]
    assert real(box, probe, config) == [] and probe["own_code_writable"] == []
    if engine == "bwrap":
        assert {"runner.py", "inside", "shims", "scratch", "outbox"} <= set(probe["box_entries"])
        assert probe["box_entries"] == config["box_entries"]
        extra = {**probe, "box_entries": sorted([*probe["box_entries"], "grader"])}
        assert any("/box holds" in p for p in real(box, extra, config))
    writable = {**probe, "own_code_writable": ["/box/inside/protocol.py"]}
    assert any("change the grader's code in its box" in p for p in real(box, writable, config))


def test_isolation_required_without_root_or_bubblewrap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("grader.sandbox.isolation.is_root", lambda: False)
    monkeypatch.setattr("grader.sandbox.bwrap.status", lambda as_root: bwrap.Status(None, False, "no bwrap"))
    with pytest.raises(SandboxFailure, match="no bwrap and the grader is not running as root"):
        Sandbox(submission_of(tmp_path, "x = 1\n"), None, FAST, require_isolation=True)
    assert any("NOT isolated" in p for p in protections())


# ----- values read by the parent -----

def _exchange_dir(tmp_path: Path) -> int:
    return os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)


def test_array_reader_accepts_numeric_npy_and_deletes_it(tmp_path):
    np.save(tmp_path / "c1.npy", np.arange(6.0).reshape(2, 3))
    reader = ArrayReader(_exchange_dir(tmp_path), max_bytes=1 << 20)
    np.testing.assert_array_equal(reader.read_array("c1.npy"), np.arange(6.0).reshape(2, 3))
    assert not (tmp_path / "c1.npy").exists()


@pytest.mark.parametrize("make, reason", [
    (lambda d: np.save(d / "c1.npy", np.array([object()]), allow_pickle=True), "dtype object"),
    (lambda d: np.save(d / "c1.npy", np.array(["text"])), "dtype <U4"),
    (lambda d: (d / "c1.npy").symlink_to("/etc/passwd"), "cannot open"),
    (lambda d: os.mkfifo(d / "c1.npy"), "not a regular file"),
    (lambda d: (d / "c1.npy").write_bytes(b"\x80\x04K\x01."), "not a valid .npy"),
    (lambda d: np.save(d / "c1.npy", np.zeros(300_000)), "larger than"),
    (lambda d: (d / "c1.npy").write_bytes(np.lib.format.magic(1, 0) + b"\x46\x00" + LYING_HEADER),
     "does not match"),
])
def test_array_reader_refuses_what_is_not_plain_numeric_data(tmp_path, make, reason):
    make(tmp_path)
    got = ArrayReader(_exchange_dir(tmp_path), max_bytes=1 << 20).read_array("c1.npy")
    assert isinstance(got, Opaque) and reason in got.repr


def test_array_reader_refuses_bad_names_and_malformed_nodes(tmp_path):
    reader = ArrayReader(_exchange_dir(tmp_path), max_bytes=1 << 20)
    assert "bad array file name" in reader.read_array("../x.npy").repr
    assert isinstance(reader.decode({"$": "dict", "items": [[[1], 2]]}), Opaque)
    assert isinstance(reader.decode({"$": "what"}), Opaque)
    assert reader.decode({"$": "float", "v": "-inf"}) == float("-inf")


def test_array_writer_refuses_to_follow_a_planted_symlink(tmp_path):
    (tmp_path / "p1.npy").symlink_to(tmp_path / "victim")
    writer = ArrayWriter(_exchange_dir(tmp_path))
    with pytest.raises(OSError):
        writer.encode(np.zeros(2))
    assert not (tmp_path / "victim").exists()
    with pytest.raises(TypeError):
        ArrayWriter(_exchange_dir(tmp_path), prefix="q").encode(object())


def test_a_traceback_through_the_graders_wrappers_shows_only_the_students_frames(tmp_path):
    source = ("def step(i):\n    if i == 3:\n        raise ValueError('bad sample')\n\n\n"
              "def loop():\n    try:\n        for i in range(5):\n            step(i)\n"
              "    except ValueError as e:\n        raise RuntimeError('the epoch failed') from e\n")
    with Sandbox(submission_of(tmp_path, source), None, FAST) as box:
        box.run_cells()
        res = box.call("loop", watch=("step", 1))
    text = res.error.traceback
    assert not res.ok and res.error.message.startswith("RuntimeError")
    assert 'line 9, in loop' in text and 'line 3, in step' in text and "ValueError: bad sample" in text
    assert "/inside/" not in text and "/box/" not in text, text  # the watch sits between loop and step


def test_while_starting_runs_once_in_the_grader_while_the_first_child_boots(tmp_path):
    calls = []
    source = "import time\n\n\ndef hang():\n    time.sleep(60)\n\n\ndef f():\n    return 2\n"
    with Sandbox(submission_of(tmp_path, source), None, FAST, while_starting=lambda: calls.append(os.getpid())) as box:
        assert calls == [os.getpid()]  # in this process, before any cell
        box.run_cells()
        assert box.call("hang", timeout_s=0.5).timed_out
        assert box.call("f").value == 2  # a new child, the cells replayed: the hook did not run again
    assert calls == [os.getpid()]


def test_run_error_is_the_shared_result_type(tmp_path):
    sub = submission_of(tmp_path, "1/0\n")
    with Sandbox(sub, None, FAST) as box:
        error = box.run_cells().errors[0]
    assert isinstance(error, RunError) and error.to_dict()["kind"] == "exception"


def _without_hiding_the_grader(script: str) -> str:
    from grader.sandbox.isolation import grader_paths

    hidden = tuple(" " + str(p) for p in grader_paths())
    return "\n".join(line for line in script.split("\n") if not line.endswith(hidden))


@needs_root
@pytest.mark.parametrize("weaken, problem", [
    (lambda command: [a for a in command if a != "--net"], "has a network"),
    (lambda command: [a for a in command if a not in ("--pid", "--mount-proc")], "fresh PID namespace"),
    (lambda command: command[:-1] + [_without_hiding_the_grader(command[-1])], "can see hidden paths"),
    (lambda command: command[:-1] + [command[-1].replace(" --no-new-privs", "")], "may gain privileges"),
])
def test_a_weakened_fallback_command_line_is_caught_by_the_probe(tmp_path, monkeypatch, weaken, problem):
    from grader.sandbox import isolation

    build = isolation.isolated_command
    monkeypatch.setattr(isolation, "isolated_command", lambda *a: weaken(build(*a)))
    with pytest.raises(SandboxFailure, match=problem):
        with Sandbox(submission_of(tmp_path, "x = 1\n"), None, FAST, engine="namespaces"):
            pass


def _replace(command: list[str], old: list[str], new: list[str]) -> list[str]:
    for i in range(len(command)):
        if command[i:i + len(old)] == old:
            return command[:i] + new + command[i + len(old):]
    raise AssertionError(f"{old} not in the command")


@needs_bwrap
@pytest.mark.parametrize("weaken, problem", [
    (lambda c: [a for a in c if a != "--unshare-net"], "has a network"),
    (lambda c: [a for a in c if a not in ("--unshare-pid", "--as-pid-1")], "fresh PID namespace"),
    (lambda c: [a for a in c if a != "--disable-userns"], "can create user namespaces"),
    (lambda c: _replace(c, ["--tmpfs", "/tmp"], ["--tmpfs", "/tmp", "--bind", "/tmp", "/tmp"]),
     "/tmp is not a fresh tmpfs"),
    (lambda c: _replace(c, ["--tmpfs", "/run"], ["--tmpfs", "/run", "--bind", "/run", "/run"]),
     "/run is not a fresh tmpfs"),
    (lambda c: _replace(c, ["--proc", "/proc"], ["--proc", "/proc", "--ro-bind", "/srv", "/srv"]),
     "holds more than it was given"),
    (lambda c: _replace(c, ["--proc", "/proc"], ["--proc", "/proc", "--bind", "/var/lib", "/var/lib"]),
     "writable mount at /var/lib"),
    (lambda c: _replace(c, ["--proc", "/proc"], ["--proc", "/proc", "--ro-bind", "/etc/hosts", "/etc/hosts"]),
     "/etc holds"),
])
def test_a_weakened_bwrap_command_line_is_caught_by_the_probe(tmp_path, monkeypatch, weaken, problem):
    build = bwrap.wrap
    monkeypatch.setattr(bwrap, "wrap", lambda *a: weaken(build(*a)))
    with pytest.raises(SandboxFailure, match=problem):
        with Sandbox(submission_of(tmp_path, "x = 1\n"), None, FAST, engine="bwrap"):
            pass


@needs_root
@pytest.mark.parametrize("engine", ENGINES)
def test_other_submissions_beside_this_one_are_invisible(tmp_path, engine):
    (tmp_path / "classmate.py").write_text("answer = 42\n")
    source = f"import os\ntry:\n    seen = open({str(tmp_path / 'classmate.py')!r}).read()\nexcept OSError as e:\n" \
             "    seen = type(e).__name__\n"
    with Sandbox(submission_of(tmp_path, source), None, FAST, engine=engine) as box:
        box.run_cells()
        assert box.get(["seen"])["seen"] == "FileNotFoundError"


@needs_root
@pytest.mark.parametrize("engine", ENGINES)
def test_the_prepared_data_cache_is_invisible(tmp_path, monkeypatch, engine):
    import shutil
    import uuid

    cache = Path("/var/cache") / f"grader-test-{uuid.uuid4().hex[:12]}"  # outside the always-hidden roots
    (cache / "entry").mkdir(parents=True)
    (cache / "entry" / "index.json").write_text("{}")
    monkeypatch.setenv("GRADER_CACHE_DIR", str(cache))
    source = f"import os\ntry:\n    seen = os.listdir({str(cache)!r})\nexcept OSError as e:\n" \
             "    seen = type(e).__name__\n"
    try:
        with Sandbox(submission_of(tmp_path, source), None, FAST, engine=engine) as box:
            box.run_cells()
            assert box.get(["seen"])["seen"] in ("FileNotFoundError", "PermissionError", [])
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_a_student_who_loads_mnist_npz_from_the_working_folder_gets_the_graders_images(tmp_path, data):
    source = ("import numpy as np\n"
              "with np.load('mnist.npz') as f:\n"
              "    x_train, y_train = f['x_train'], f['y_train']\n")
    with Sandbox(submission_of(tmp_path, source), data) as box:
        assert box.run_cells().errors == ()
        got = box.get(["x_train", "y_train"])
    np.testing.assert_array_equal(got["x_train"], data.x_train)
    np.testing.assert_array_equal(got["y_train"], data.y_train)


# ----- grade --doctor -----

@needs_bwrap
def test_doctor_names_the_sandbox_and_lists_what_its_child_verified(capsys):
    from grader.doctor import doctor

    assert doctor() == 0
    out = capsys.readouterr().out
    assert "Sandbox here: bubblewrap" in out and "Verified in the child:" in out
    assert "filesystem built from nothing" in out and "no user namespaces can be created" in out


@needs_root
def test_doctor_says_plainly_what_a_machine_without_bubblewrap_lacks(capsys, monkeypatch):
    from grader.doctor import doctor

    monkeypatch.setattr("grader.sandbox.bwrap.status", lambda as_root: bwrap.Status(None, False, "not installed"))
    assert doctor() == 0
    out = capsys.readouterr().out
    assert "Sandbox here: fallback" in out and "bubblewrap (not installed; Debian package bubblewrap)" in out
    assert "NOT blocked here (no bubblewrap)" in out


# ----- whole-sandbox limits -----

@pytest.mark.skipif(cgroups.available() is None, reason="no writable cgroup here")
def test_a_sandbox_cgroup_holds_its_limits_and_a_dead_graders_leftover_is_swept():
    group, how = cgroups.Cgroup.make(300 * 2**20, 12)
    assert group is not None and how.startswith("cgroup v")
    leftover = cgroups.Cgroup(group.version, group.memory_dir.parent / "grader-box-4194305-0badf00d",
                              group.pids_dir.parent / "grader-box-4194305-0badf00d")  # above pid_max: dead
    for d in {leftover.memory_dir, leftover.pids_dir}:
        d.mkdir()
    try:
        assert group.limit() == (300 * 2**20, 12)
        second, _ = cgroups.Cgroup.make(2**30, 12)
        assert second is not None and not leftover.memory_dir.exists() and not leftover.pids_dir.exists()
        second.remove()
    finally:
        group.remove()
        leftover.remove()
    assert not group.memory_dir.exists()


@pytest.mark.skipif(cgroups.available() is None, reason="no writable cgroup here")
def test_a_child_that_cannot_join_its_cgroup_is_never_started(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups.Cgroup, "procs_files", lambda self: [Path("/dev/full")])  # every write fails
    with pytest.raises(SandboxFailure, match="could not be started"):
        with Sandbox(submission_of(tmp_path, "x = 1\n"), None, FAST):
            pass


def test_the_childs_own_code_imports_only_itself_the_stdlib_and_numpy():
    """The child cannot import `grader` (hidden from it) and loads `inside` as a top-level package."""
    import ast

    folder = Path(__file__).parent.parent / "grader" / "sandbox" / "inside"
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = [str(node.module).split(".")[0]]
            else:  # within the package only: `..` would leave `inside`, its top level in the child
                assert not isinstance(node, ast.ImportFrom) or node.level == 1, f"{path.name}:{node.lineno}"
                continue
            assert set(tops) <= set(sys.stdlib_module_names) | {"numpy"}, f"{path.name}:{node.lineno} {tops}"


def test_the_view_holds_the_students_packages_and_never_the_graders(tmp_path):
    import grader
    import reference

    entries = [e for d in bwrap._site_dirs() for e in bwrap.allowed_entries(d)]
    assert "numpy" in entries and "matplotlib" in entries
    assert not {"grader", "reference"} & set(entries) and not any(e.endswith(".pth") for e in entries)
    files = bwrap.BoxFiles(*(tmp_path / n for n in ("runner.py", "inside", "shims", "data", "inbox")), None,
                           *(tmp_path / n for n in ("probe-secret", "passwd", "group")))
    view = bwrap.view(files, bwrap.Sizes(16, 64), hidden=[])
    for package in (grader, reference):
        assert bwrap.visible_at_own_path(view, Path(package.__file__).parent) is None
    assert bwrap.visible_at_own_path(view, Path(np.__file__).parent) is not None
    assert bwrap.visible_at_own_path(view, Path("/srv")) is None and bwrap.visible_at_own_path(view, tmp_path) is None


def test_the_font_list_found_without_matplotlib_is_the_one_matplotlib_uses():
    from grader.sandbox.start import _font_cache_folder, _font_list_built, _font_list_on_disk

    built = _font_list_built()  # imports matplotlib and lets it say where its font list is
    found = _font_list_on_disk()
    assert found is None or found == built
    if built is not None and built.parent == _font_cache_folder() and len(list(built.parent.glob("fontlist-*"))) == 1:
        assert found == built  # matplotlib could write its usual folder: found there, without importing it


KEYWORD_LOOP = '''
import numpy as np

steps = 0


def train_one_sample(sample, label, learning_rate=0.1):
    global steps
    steps += 1


def train_one_epoch(learning_rate=0.1):
    for i in range(len(x_train)):
        train_one_sample(label=y_train[i], learning_rate=learning_rate, sample=x_train[i])
'''


def test_compact_recording_reads_the_sample_a_loop_passes_by_keyword(tmp_path, data):
    from grader.adapt.marks import mark_samples, marked_index
    from grader.sandbox.runner import sample_key

    images = mark_samples(np.tile(data.x_train[:50], (4, 1, 1)))  # 200 samples, each marked with its index
    with Sandbox(submission_of(tmp_path, KEYWORD_LOOP), data, FAST) as box:
        box.run_cells()
        res = box.call("train_one_epoch", set_globals={"x_train": images, "y_train": np.arange(200) % 10},
                       record=("train_one_sample",), compact=True, get_globals=["steps"])
    assert res.ok, res.error
    keys = res.recorded
    assert keys[0] == sample_key(images[0]) and res.globals["steps"] == 1  # only the first step ran
    assert [marked_index(k) for k in keys[1:]] == list(range(1, 200))


def test_a_repeated_array_is_built_in_the_child_as_the_grader_would_build_it(tmp_path, data):
    from grader.adapt.marks import index_marks, mark_samples
    from grader.sandbox.values import Repeated

    base = data.x_train[:30]
    with Sandbox(submission_of(tmp_path, "def echo(a, b):\n    return a, b\n"), data, FAST) as box:
        box.run_cells()
        res = box.call("echo", [Repeated(base, 100, index_marks(100).astype(base.dtype)),
                                Repeated(np.arange(30), 100)])
    assert res.ok, res.error
    marked, labels = res.value
    assert marked.dtype == base.dtype and np.array_equal(marked, mark_samples(np.resize(base, (100, 28, 28))))
    assert np.array_equal(labels, np.resize(np.arange(30), 100))
