"""grader/selfcheck.py and grader/kernel_box.py: `check()` in the student's own kernel.

Namespaces are built as a notebook builds them: reference/solution.py's source executed into a fresh dict
(its data loaded by reference.mnist, then cut small), or kv2154's real function definitions with MNIST
arrays. The checks, adapter and scoring are the real ones; only the sandbox is replaced by the kernel.
"""

from __future__ import annotations

import ast
import builtins
import json
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader.kernel_box import CallTimedOut, KernelBox, value_tree
from grader.kernel_state import preserved_state
from grader.sandbox import Fingerprint, Limits, Opaque
from grader.selfcheck import (
    MAYBE_TRAINED_NOTE,
    TRAINED_NOTE,
    SelfCheckReport,
    check,
    looks_trained,
    question_id,
    render_html,
)
from reference.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = (ROOT / "reference" / "solution.py").read_text()
KV2154 = ROOT / "submissions" / "kv2154.py"
Q3_TENSORS = ("W1", "b1", "W2", "b2", "W3", "b3")


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(ROOT / "reference" / "data" / "mnist_sample.npz")


def solution_namespace(mnist) -> dict:
    """reference/solution.py run as a notebook's cells would run it (not as __main__: no training), data cut."""
    ns = {"__name__": "student_notebook"}
    exec(compile(SOLUTION, "solution.ipynb", "exec"), ns)
    ns.update(x_train=ns["x_train"][:1000], y_train=ns["y_train"][:1000],
              x_test=ns["x_test"][:500], y_test=ns["y_test"][:500])
    return ns


def kv2154_namespace(mnist) -> dict:
    """kv2154's imports, Q1 assignments and function definitions (no top-level training), MNIST from reference."""
    tree = ast.parse(KV2154.read_text())
    keep = [node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign))
            and not any(word in ast.unparse(node) for word in ("tensorflow", "tf.", "matplotlib"))]
    ns = {"__name__": "student_notebook", "x_train": mnist.x_train[:1000], "y_train": mnist.y_train[:1000],
          "x_test": mnist.x_test[:500], "y_test": mnist.y_test[:500]}
    np.random.seed(7)  # kv2154 draws W1..W3 from the global np.random
    exec(compile(ast.Module(keep, type_ignores=[]), str(KV2154), "exec"), ns)
    return ns


def state_of(ns: dict) -> dict:
    """Identity and contents of everything check() could disturb."""
    return {
        "names": {k: id(v) for k, v in ns.items()},
        "weights": [(id(w), w.copy()) for w in ns["weights"]],
        "biases": [(id(b), b.copy()) for b in ns["biases"]],
        "x_train": (id(ns["x_train"]), ns["x_train"].copy()), "y_train": ns["y_train"].copy(),
        "rng": json.dumps(ns["rng"].bit_generator.state, default=str),
        "np.random": np.random.get_state(), "random": random.getstate(), "seterr": np.geterr(),
    }


def assert_same_state(before: dict, after: dict) -> None:
    assert after["names"] == before["names"]
    for part in ("weights", "biases"):
        assert [i for i, _ in after[part]] == [i for i, _ in before[part]]
        for (_, a), (_, b) in zip(after[part], before[part], strict=True):
            np.testing.assert_array_equal(a, b)
    assert after["x_train"][0] == before["x_train"][0]
    np.testing.assert_array_equal(after["x_train"][1], before["x_train"][1])
    np.testing.assert_array_equal(after["y_train"], before["y_train"])
    assert after["rng"] == before["rng"]
    for a, b in zip(after["np.random"], before["np.random"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert after["random"] == before["random"] and after["seterr"] == before["seterr"]


@pytest.fixture(scope="module")
def solution_run(mnist):
    """One full check of the reference solution, with the namespace's state before and after."""
    ns = solution_namespace(mnist)
    np.random.seed(1234)
    random.seed(99)
    ns["rng"].normal(size=3)  # the student's generator is mid-stream, as after their Q1 cell
    before = state_of(ns)
    report = check(namespace=ns, mnist=mnist, show=False)
    return report, before, state_of(ns), ns


# ------------------------------------------------------------------------------------- grading


def test_reference_solution_gets_full_visible_marks(solution_run):
    report, *_ = solution_run
    assert [q.id for q in report.questions] == ["helpers", "Q1", "Q2", "Q3", "Q4"]
    assert report.failures() == []
    assert report.score == report.max_score == 100
    assert report.problems == ()


def test_only_visible_checks_are_shown(solution_run):
    report, *_ = solution_run
    ids = {c.id for q in report.questions for c in q.checks}
    assert {"Q3.learning_rate", "Q3.determinism", "Q3.zero_pixels"}.isdisjoint(ids)
    assert all(c.visibility == "visible" for q in report.questions for c in q.checks)


def test_kv2154_gets_its_known_q1_to_q3_failures(mnist):
    ns = kv2154_namespace(mnist)
    q1, q2, q3 = (check(q, namespace=ns, mnist=mnist, show=False) for q in ("Q1", "Q2", "Q3"))
    assert q1.check("Q1.W3.distribution").status == "failed"
    assert "uniform" in q1.check("Q1.W3.distribution").message
    assert q1.check("Q1.W1.distribution").status == q1.check("Q1.W2.distribution").status == "passed"
    assert q2.check("Q2.loss").status == "failed" and "got loss inf" in q2.check("Q2.loss").message
    failed = {t for t in Q3_TENSORS if q3.check(f"Q3.{t}").status == "failed"}
    assert failed == {"W1", "b1", "b2"}
    assert "sigma'(z2)" in q3.check("Q3.b2").message
    assert q3.score == 17 and q3.max_score == 40


def test_check_of_one_question_runs_only_that_question(mnist):
    ns = solution_namespace(mnist)

    class Calls:  # a plain object: its attributes are not restored, so the counts survive the check
        counts: dict = {}

    calls = Calls()
    calls.counts = {}
    for name in ("train_one_sample", "train_one_epoch", "feed_forward_sample", "feed_forward_dataset"):
        original = ns[name]

        def counted(*args, _name=name, _original=original, **kwargs):
            calls.counts[_name] = calls.counts.get(_name, 0) + 1
            return _original(*args, **kwargs)

        counted.__signature__ = __import__("inspect").signature(original)
        ns[name] = counted
    report = check("q3", namespace=ns, mnist=mnist, show=False)
    assert [q.id for q in report.questions] == ["Q3"]
    assert report.score == report.max_score == 40
    assert calls.counts.get("train_one_sample", 0) > 0
    assert {k: v for k, v in calls.counts.items() if k != "train_one_sample"} == {}


def test_question_names_are_normalised_and_unknown_ones_refused():
    assert [question_id(q) for q in ("Q3", "q3", "3", 3, "helpers", None)] == ["Q3", "Q3", "Q3", "Q3",
                                                                                 "helpers", None]
    with pytest.raises(ValueError, match="Q5.*choose one of helpers, Q1, Q2, Q3, Q4"):
        question_id("Q5")


def test_a_raising_function_becomes_an_error_with_the_students_own_traceback(mnist):
    ns = solution_namespace(mnist)
    source = "def train_one_sample(sample, y, learning_rate=0.003):\n    raise ValueError('shapes (1,784) and (32,)')\n"
    exec(compile(source, "/tmp/student_cell_7.py", "exec"), ns)
    report = check("Q3", namespace=ns, mnist=mnist, show=False)
    result = report.check("Q3.W1")
    assert result.status == "error" and "ValueError: shapes (1,784) and (32,)" in result.message
    assert "/tmp/student_cell_7.py" in result.traceback and "line 2" in result.traceback
    assert "kernel_box.py" not in result.traceback
    assert "Traceback" in report.to_text() and "student_cell_7.py" in report.to_text()


def test_an_empty_kernel_gets_zero_with_each_reason_said_once(mnist):
    report = check(namespace={}, mnist=mnist, show=False)
    assert report.score == 0 and report.max_score == 100 and len(report.failures()) == 26  # + signatures, real step
    text = report.to_text()
    assert text.count("weights/biases not defined at top level") == 1
    pairs = [(a, b) for q in report.questions for a, b in zip(q.checks[:-1], q.checks[1:], strict=True)]
    repeats = sum(a.message == b.message for a, b in pairs)
    assert repeats >= 9 and text.count("(the same reason as above)") == repeats  # Q1 4, Q3 5, ...
    html = report._repr_html_()
    assert html.count("weights/biases not defined at top level") == 1 and "The same reason as above" in html


# ------------------------------------------------------------------------- the kernel's state


def test_globals_are_unchanged_after_a_full_check(solution_run):
    _, before, after, _ = solution_run
    assert_same_state(before, after)


def test_student_code_that_mutates_its_own_state_is_undone(mnist):
    ns = solution_namespace(mnist)
    ns.update(counter=0, log=[], settings={"lr": 0.003})
    sneaky = textwrap.dedent("""
        _originals = (weights, x_train)
        _real_step = train_one_sample

        def train_one_sample(sample, y, learning_rate=0.003):
            global counter, added
            _originals[0][0][0, 0] += 1.0      # the student's own W1, reached through a closure
            _originals[1][0, 5, 5] = 77         # the student's own data, in place
            counter += 1
            added = True
            log.append(counter)
            settings["lr"] = learning_rate
            np.random.rand(3)
            rng.normal(size=2)
            return _real_step(sample, y, learning_rate)
    """)
    exec(compile(sneaky, "sneaky.py", "exec"), ns)
    before = state_of(ns)
    log, settings = ns["log"], ns["settings"]
    report = check("Q3", namespace=ns, mnist=mnist, show=False)
    # The grader writes into the student's own arrays, so the extra += 1 on W1 is part of the step: W1 is wrong
    assert report.score == 40 - 9
    assert_same_state(before, state_of(ns))
    assert ns["counter"] == 0 and "added" not in ns
    assert ns["log"] is log and log == [] and ns["settings"] is settings and settings == {"lr": 0.003}


def test_interrupting_a_check_still_restores_the_kernel(mnist):
    ns = solution_namespace(mnist)
    real_step = ns["train_one_sample"]

    def interrupted(sample, y, learning_rate=0.003):
        real_step(sample, y, learning_rate)  # the grader's copies of the weights are already updated
        raise KeyboardInterrupt

    ns["train_one_sample"] = interrupted
    before = state_of(ns)
    with pytest.raises(KeyboardInterrupt):
        check("Q3", namespace=ns, mnist=mnist, show=False)
    assert_same_state(before, state_of(ns))


def test_preserved_state_restores_arrays_lists_and_generators_in_place():
    w, rng = np.arange(6.0), np.random.default_rng(3)
    nested = [w, {"k": [1, 2]}]
    ns = {"w": w, "nested": nested, "rng": rng, "frozen": np.ones(2)}
    rng_state = json.dumps(rng.bit_generator.state)
    with preserved_state(ns):
        w[:] = -1
        nested.append("x")
        nested[1]["k"].pop()
        nested[1]["new"] = 1
        rng.random(5)
        ns["w"] = "rebound"
        ns["extra"] = 1
        del ns["frozen"]
    assert ns["w"] is w and w.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert ns["nested"] is nested and len(nested) == 2 and nested[1] == {"k": [1, 2]}
    assert json.dumps(rng.bit_generator.state) == rng_state
    assert set(ns) == {"w", "nested", "rng", "frozen"}


def test_a_trained_kernel_is_not_judged_as_an_initialisation(mnist):
    ns = solution_namespace(mnist)
    for i in range(30):
        ns["train_one_sample"](ns["x_train"][i], ns["y_train"][i])
    report = check("Q1", namespace=ns, mnist=mnist, show=False)
    assert all(c.status == "skipped" and c.score == 0 for c in report.questions[0].checks)
    assert report.notes["Q1"] == TRAINED_NOTE and report.unchecked == ("Q1",) and report.max_score == 0
    text = report.to_text()
    assert text.count(TRAINED_NOTE) == 1 and "Q1 Initialisation: not checked (15 points)" in text
    assert "not checked" in report._repr_html_()


def test_non_zero_initial_biases_fail_q1_with_a_note_not_as_training(mnist):
    ns = solution_namespace(mnist)
    ns["biases"] = [np.random.default_rng(1).normal(0, 0.1, n) for n in (32, 32, 10)]
    report = check("Q1", namespace=ns, mnist=mnist, show=False)
    assert report.check("Q1.biases").status == "failed"
    assert report.check("Q1.W1.distribution").status == "passed"
    assert report.notes["Q1"] == MAYBE_TRAINED_NOTE


def test_looks_trained_needs_b3_moved_by_sgd():
    zero = ([], [np.zeros(32), np.zeros(32), np.zeros(10)])
    random_b3 = ([], [np.zeros(32), np.zeros(32), np.random.default_rng(0).normal(size=10)])
    sgd_b3 = ([], [np.zeros(32), np.zeros(32), -0.003 * (np.full(10, 0.1) - np.eye(10)[3])])
    assert not looks_trained(zero) and not looks_trained(random_b3) and looks_trained(sgd_b3)
    assert not looks_trained(None)


def test_the_default_namespace_is_the_callers_globals(mnist):
    ns = solution_namespace(mnist)
    ns["M"] = mnist
    exec("from grader.selfcheck import check\nreport = check('Q2', mnist=M, show=False)", ns)
    assert isinstance(ns["report"], SelfCheckReport) and ns["report"].score == 20


# ----------------------------------------------------------------------------- the kernel box


def test_kernel_box_crosses_values_like_the_sandbox():
    source = textwrap.dedent("""
        import numpy as np
        scale = 2.0
        def f(a, items):
            a *= scale                       # mutates the argument it was given
            items.append(np.float64(1.5))
            return (np.float64(a.sum()), np.int64(3), object(), {"k": a})
        def step(x, lr=0.1):
            return None
        def loop(xs):
            for x in xs:
                step(x)
    """)
    ns: dict = {}
    exec(source, ns)
    box = KernelBox(ns)
    sent = np.arange(3.0)
    result = box.call("f", [sent, []], set_globals={"scale": 10.0}, get_globals=["scale"])
    assert result.ok and sent.tolist() == [0.0, 1.0, 2.0]  # the grader's array is not the student's
    total, three, obj, mapping = result.value
    assert type(total) is float and total == 30.0 and type(three) is int and isinstance(obj, Opaque)
    assert mapping["k"].tolist() == [0.0, 10.0, 20.0]
    assert result.globals == {"scale": 10.0} and ns["scale"] == 2.0
    recorded = box.call("loop", [[np.ones((2, 2)), np.zeros(3)]], record=["step"]).recorded
    assert [r["arguments"]["lr"] for r in recorded] == [0.1, 0.1]
    first = recorded[0]["arguments"]["x"]
    assert isinstance(first, Fingerprint) and first.shape == (2, 2) and first.sum == 4.0
    assert ns["step"].__name__ == "step"
    assert box.namespace()["f"].kind == "function" and [p.name for p in box.namespace()["f"].signature] == [
        "a", "items"]
    assert box.get(["scale", "missing"]) == {"scale": 2.0}


def test_input_in_student_code_fails_at_once_instead_of_waiting():
    ns: dict = {}
    original_input = builtins.input
    exec("def ask():\n    return input('learning rate? ')\n", ns)
    result = KernelBox(ns).call("ask")
    assert result.error.kind == "exception" and "EOFError" in result.error.message
    assert builtins.input is original_input


def test_a_missing_function_is_an_error_result_not_a_crash():
    box = KernelBox({})
    assert box.protections()[0].startswith("in-process self-check: no isolation")
    result = box.call("train_one_sample", [1])
    assert not result.ok and result.error.kind == "exception" and "not defined" in result.error.message


@pytest.mark.skipif(sys.platform == "win32", reason="SIGALRM is Unix only")
def test_a_call_that_never_returns_is_stopped_even_if_it_catches_the_interrupt():
    ns: dict = {}
    exec(compile(textwrap.dedent("""
        def stubborn():
            for _ in range(3):
                try:
                    while True:
                        pass
                except Exception:
                    pass
                except BaseException:
                    pass
            while True:
                pass
    """), "stubborn.py", "exec"), ns)
    handler = signal.getsignal(signal.SIGALRM)
    result = KernelBox(ns, Limits(call_timeout_s=0.2)).call("stubborn")
    assert result.timed_out and result.error.kind == "timeout" and "0.2 s" in result.error.message
    assert "stubborn.py" in result.error.traceback
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert issubclass(CallTimedOut, BaseException) and not issubclass(CallTimedOut, Exception)


def test_value_tree_refuses_object_arrays_and_keeps_structure():
    tree = value_tree({"a": (1, [np.array(["x"], dtype=object)]), "n": float("nan")})
    assert isinstance(tree["a"], tuple) and isinstance(tree["a"][1][0], Opaque) and np.isnan(tree["n"])


# ------------------------------------------------------------------------------------- display


def test_html_is_escaped_scoped_and_self_contained(mnist):
    ns = solution_namespace(mnist)
    exec("def train_one_sample(sample, y, learning_rate=0.003):\n    raise RuntimeError('<script>x</script>')\n",
         ns)
    html = render_html(check("Q3", namespace=ns, mnist=mnist, show=False))
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script" not in html
    css = html.split("<style>")[1].split("</style>")[0]
    selectors = [rule.split("{")[0].strip() for rule in css.split("}") if "{" in rule]
    assert selectors and all(s.startswith(".gsc") for sel in selectors for s in map(str.strip, sel.split(",")))
    assert "http" not in html and "<link" not in html


def test_plain_python_prints_the_text_report(mnist, capsys):
    ns = solution_namespace(mnist)
    report = check("Q2", namespace=ns, mnist=mnist)
    out = capsys.readouterr().out
    assert out.strip() == report.to_text().strip() and "Q2 Forward pass: 20 / 20" in out


IPYTHON_SCRIPT = """
import json, re, sys
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from reference.mnist import load_mnist

shell = InteractiveShell.instance()
shell.user_ns["M"] = load_mnist(sys.argv[1])
shell.run_cell(sys.argv[2], store_history=True)
cells = {"last_expression": "from grader.selfcheck import check\\ncheck('Q2', mnist=M)",
         "assigned": "r = check('Q2', mnist=M)", "echo_later": "r"}
shown = {}
for name, cell in cells.items():
    with capture_output() as captured:
        shell.run_cell(cell, store_history=True)  # as a kernel runs cells: each one a new execution count
    printed = re.sub(r"Out\\[\\d+\\]:", "", captured.stdout).strip()  # a terminal shell's empty prompt
    shown[name] = [sorted(o.data) for o in captured.outputs] + ([printed] if printed else [])
    if name == "last_expression":
        html = captured.outputs[0].data["text/html"]
print(json.dumps({"shown": shown, "html_has_score": "20 / 20" in html,
                  "weights_kept": shell.user_ns["weights"] is shell.user_ns["_weights_before"]}))
"""


def test_under_ipython_the_report_is_displayed_once_as_html(tmp_path):
    cell = SOLUTION.split('if __name__ == "__main__":')[0] + "\n_weights_before = weights\n"
    completed = subprocess.run(
        [sys.executable, "-c", IPYTHON_SCRIPT, str(ROOT / "reference" / "data" / "mnist_sample.npz"), cell],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    bundle = ["text/html", "text/plain"]
    assert answer["shown"] == {"last_expression": [bundle], "assigned": [bundle], "echo_later": [bundle]}
    assert answer["html_has_score"] and answer["weights_kept"]


def test_in_a_real_notebook_kernel():
    pytest.importorskip("nbclient", reason="nbclient is not installed (it comes with the test extra)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed")
    import nbclient
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(SOLUTION.split('if __name__ == "__main__":')[0]),
        nbformat.v4.new_code_cell("from grader import check\ncheck('Q2')"),
    ])
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = notebook.cells[1].outputs
    assert len(outputs) == 1 and "20 / 20" in outputs[0]["data"]["text/html"]


# --------------------------------------------------------------------- the same answers as grading


def test_the_kernel_and_the_sandbox_train_kv2154_alike(mnist):
    """Q4 in the kernel must agree with the real grade: the same adapter over either box, the same bits."""
    from grader.adapt.build import build_student
    from grader.sandbox import Sandbox, SandboxData
    from grader.submission import load_submission
    from reference import network

    images = network.flatten_images(mnist.x_train[:20])  # 20 steps: beyond that training is chaotic (GUIDE)
    labels = mnist.y_train[:20].astype(np.int64)
    start = network.init_params()
    small = SandboxData(mnist.x_train[:50], mnist.y_train[:50], mnist.x_test[:50], mnist.y_test[:50])
    with Sandbox(load_submission(KV2154), data=small) as box:
        sandboxed = build_student(box, box.run_cells()).train_one_epoch(start, images, labels, 0.003, False)
    ns = kv2154_namespace(mnist)
    with preserved_state(ns):
        box = KernelBox(ns)
        in_kernel = build_student(box, box.run_cells()).train_one_epoch(start, images, labels, 0.003, False)
    # The grader writes into the student's own arrays, whose memory (alignment, hence BLAS's summation order)
    # differs between the sandbox, where kv2154's top-level training ran, and this kernel: equal to rounding.
    for a, b in zip(in_kernel.params[0] + in_kernel.params[1], sandboxed.params[0] + sandboxed.params[1],
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)


def test_kv2154s_partly_credited_training_reads_partial_in_the_notebook_view(mnist):
    q4 = check("Q4", namespace=kv2154_namespace(mnist), mnist=mnist, show=False)
    training = q4.check("Q4.training")
    assert training.status == "failed" and 0 < training.score < training.max_score
    assert f"[PARTIAL] {training.title}" in q4.to_text()
    assert f'<span class="badge partial">partial</span>{training.title}' in q4._repr_html_()
