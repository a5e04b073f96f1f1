"""What pointing at the line costs: `python -m benchmarks.pinpoint`.

Per submission, one probe call of train_one_sample in the sandbox, plain and traced (median of repeats), the
arrays the trace brought back, and the parent's matching (grader/pinpoint.py). Tracing happens once per
submission (the first probe digit at the large learning rate).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from grader.adapt.build import build_student
from grader.gradients import implied_gradient, probe_point
from grader.pinpoint import Pinpoint, TracedArray
from grader.sandbox import Sandbox, SandboxData
from grader.submission import load_submission
from reference.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ("submissions/kv2154.py", "reference/solution.py", "tests/fixtures/students/sigma_of_activation.py",
               "tests/fixtures/pinpoint/softmax_derivative_class.py",
               "tests/fixtures/pinpoint/sigma_prime_scaled_rows.ipynb")


def measure(path: Path, data: SandboxData, x, label: int, repeats: int) -> dict[str, float]:
    """Median plain and traced call times (ms), records, numbers traced, and the parent's matching time (ms)."""
    with Sandbox(load_submission(path), data=data) as box:
        student = build_student(box, box.run_cells())
        params = probe_point(x, 0)
        plain, traced, records = [], [], ()
        for _ in range(repeats):
            started = time.perf_counter()
            student.train_one_sample(params, x, label, 1.0)
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            after, records = student.traced_train_one_sample(params, x, label, 1.0)
            traced.append(time.perf_counter() - started)
    started = time.perf_counter()
    pinpoint = Pinpoint([TracedArray.from_record(r) for r in records], params, x, label)
    implied = implied_gradient(params, after, 1.0)
    for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
        pinpoint.first_wrong(name, implied)
    matching = time.perf_counter() - started
    return {"plain_ms": 1e3 * statistics.median(plain), "traced_ms": 1e3 * statistics.median(traced),
            "records": len(records), "numbers": sum(r["value"].size for r in records), "matching_ms": 1e3 * matching}


def main(repeats: int = 10) -> None:
    mnist = load_mnist(ROOT / "reference" / "data" / "mnist_sample.npz")
    data = SandboxData(mnist.x_train[:100], mnist.y_train[:100], mnist.x_test[:50], mnist.y_test[:50])
    x, label = mnist.x_train[0].reshape(-1).astype(float), int(mnist.y_train[0])
    print(f"{'submission':58} {'plain ms':>9} {'traced ms':>9} {'records':>7} {'numbers':>8} {'match ms':>8}")
    for name in SUBMISSIONS:
        m = measure(ROOT / name, data, x, label, repeats)
        print(f"{name:58} {m['plain_ms']:9.1f} {m['traced_ms']:9.1f} {m['records']:7d} {m['numbers']:8d} "
              f"{m['matching_ms']:8.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
