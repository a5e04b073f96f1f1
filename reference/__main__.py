"""`python -m reference`: run the handout end to end with the oracle and print test accuracy per epoch.

The handout's recipe: init with default_rng(80085), raw 0..255 pixels, per-sample SGD in data order,
lr 0.003, 3 epochs; test accuracy goes from about 10% to about 70%.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from reference import network
from reference.mnist import MnistError, flattened, load_mnist


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reference", description="Run the handout end to end: test accuracy per epoch."
    )
    parser.add_argument("--mnist", type=Path, default=None, help="keras-layout mnist.npz")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="first N train and test digits only")
    parser.add_argument("--learning-rate", type=float, default=network.LEARNING_RATE)
    parser.add_argument("--seed", type=int, default=network.SEED)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def report(epoch: int, test_loss: float, test_accuracy: float, elapsed: float) -> None:
    """One line of figures on the test set."""
    when = "before training" if epoch == 0 else f"after epoch {epoch}"
    print(f"{when:>16}: test accuracy {100 * test_accuracy:6.2f} %, loss {test_loss:.4f}  ({elapsed:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        data = flattened(load_mnist(args.mnist), args.limit)
    except MnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"MNIST from {data.source}: {len(data.y_train)} train, {len(data.y_test)} test digits")
    weights, biases = network.init_params(args.seed)
    report(0, *network.evaluate(weights, biases, data.x_test, data.y_test), time.perf_counter() - start)
    for epoch in range(1, args.epochs + 1):
        with tqdm(total=len(data.y_train), desc=f"epoch {epoch}", unit="digit", disable=args.no_progress,
                  leave=False, mininterval=0.5) as bar:
            weights, biases = network.train_epoch(
                weights, biases, data.x_train, data.y_train, args.learning_rate, lambda _: bar.update()
            )
        figures = network.evaluate(weights, biases, data.x_test, data.y_test)
        report(epoch, *figures, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
