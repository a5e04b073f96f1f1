"""The handout solved in its own API, as a perfect student would hand it in.

Module globals as the handout has them: x_train, y_train, x_test, y_test (raw uint8 images (n, 28, 28)
and labels (n,)), `weights` (W of shape (n_in, n_out), used as z = a @ W + b) and `biases` ((n_out,)).
The functions read and update these globals, exactly like the notebook. Importing this module only
loads the data and initialises the network; training runs only when it is executed as a script.

It agrees with reference/network.py (the pure-function oracle): same initial parameters bit for bit,
same forward pass, same gradient.
"""

import numpy as np
from numpy.random import default_rng


def load_data():
    """MNIST as keras returns it: ((x_train, y_train), (x_test, y_test)), uint8."""
    try:
        from reference.mnist import load_mnist
    except ImportError:  # run as a submission, where only the handout's TensorFlow loader exists
        import tensorflow as tf

        return tf.keras.datasets.mnist.load_data(path="mnist.npz")
    data = load_mnist()
    return (data.x_train, data.y_train), (data.x_test, data.y_test)


(x_train, y_train), (x_test, y_test) = load_data()


# Helper functions: sigmoid hidden layers, softmax output, cross-entropy loss.


def sigmoid(x):
    """Logistic function 1 / (1 + e^-x); written so that no exponent is positive (no overflow)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def dsigmoid(x):
    """Derivative of the sigmoid, evaluated at the pre-activation x."""
    return sigmoid(x) * (1 - sigmoid(x))


def softmax(x):
    """Softmax over the last axis, as exp(x - logsumexp(x)); shifting by the max avoids overflow.

    Same arithmetic as reference.network.softmax, so a training run here matches the oracle's bit for bit
    (the raw-pixel training is chaotic: a difference in the last bit grows to a different 3-epoch accuracy).
    """
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True)))


def cross_entropy_loss(y, yHat):
    """-sum(y * log(yHat)) for a one-hot y and probabilities yHat; a probability that underflowed
    to 0 is read as the smallest positive float, so the loss stays finite."""
    return -np.sum(y * np.log(np.maximum(yHat, np.finfo(np.float64).tiny)))


def integer_to_one_hot(x, max):
    """Integer class x -> one-hot vector of length max."""
    result = np.zeros(max)
    result[x] = 1
    return result


# Q1. A 784 -> 32 -> 32 -> 10 network: W ~ N(0, variance 1/max(n_in, n_out)), zero biases.

rng = default_rng(80085)
layer_sizes = [784, 32, 32, 10]
weights = []
biases = []
for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
    weights.append(rng.normal(0.0, np.sqrt(1.0 / max(n_in, n_out)), size=(n_in, n_out)))
    biases.append(np.zeros(n_out))


# Q2. The forward pass.


def forward_pass(sample):
    """Pre-activations zs [z1 (32,), z2 (32,), z3 (10,)] and activations [x (784,), a1, a2, softmax (10,)]."""
    a = np.asarray(sample, dtype=np.float64).reshape(-1)
    zs, activations = [], [a]
    for i in range(len(weights)):
        z = a @ weights[i] + biases[i]
        a = softmax(z) if i == len(weights) - 1 else sigmoid(z)
        zs.append(z)
        activations.append(a)
    return zs, activations


def feed_forward_sample(sample, y):
    """Forward pass of one digit (28, 28) or (784,) with label y: returns (loss, one-hot guess (10,))."""
    _, activations = forward_pass(sample)
    output = activations[-1]
    loss = cross_entropy_loss(integer_to_one_hot(y, 10), output)
    one_hot_guess = integer_to_one_hot(np.argmax(output), 10)
    return loss, one_hot_guess


def feed_forward_dataset(x, y):
    """Forward pass of every digit in x (n, 28, 28); prints the average loss and the accuracy."""
    losses = np.empty(x.shape[0])
    one_hot_guesses = np.empty((x.shape[0], 10))
    for i in range(x.shape[0]):
        losses[i], one_hot_guesses[i] = feed_forward_sample(x[i], y[i])

    y_one_hot = np.zeros((y.size, 10))
    y_one_hot[np.arange(y.size), y] = 1

    correct_guesses = int(np.sum(y_one_hot * one_hot_guesses))
    correct_guess_percent = format((correct_guesses / y.shape[0]) * 100, ".2f")

    print("Average loss:", format(np.average(losses), ".2f"))
    print("Accuracy (# of correct guesses):", correct_guesses, "/", y.shape[0],
          "(", correct_guess_percent, "%)")


def feed_forward_training_data():
    print("Feeding forward all training data...")
    feed_forward_dataset(x_train, y_train)
    print("")


def feed_forward_test_data():
    print("Feeding forward all test data...")
    feed_forward_dataset(x_test, y_test)
    print("")


# Q3. Backpropagation and one step of gradient descent.


def train_one_sample(sample, y, learning_rate=0.003):
    """One SGD step on one digit: backpropagate the loss and update the global weights and biases in place."""
    zs, activations = forward_pass(sample)

    # dLoss/dz of the output layer: for softmax followed by cross-entropy it is (prediction - target).
    delta = activations[-1] - integer_to_one_hot(y, 10)

    weight_gradients = [None] * len(weights)
    bias_gradients = [None] * len(weights)
    for i in reversed(range(len(weights))):
        weight_gradients[i] = np.outer(activations[i], delta)  # (n_in, n_out), like weights[i]
        bias_gradients[i] = delta
        if i > 0:
            # Step back through W_i, then through the sigmoid of the layer below, at its pre-activation.
            delta = (weights[i] @ delta) * dsigmoid(zs[i - 1])

    # Only now update: every gradient above was computed with the weights of the forward pass.
    for i in range(len(weights)):
        weights[i] -= learning_rate * weight_gradients[i]
        biases[i] -= learning_rate * bias_gradients[i]


# Q4. Training, one sample at a time, in data order.


def train_one_epoch(learning_rate=0.003):
    print("Training for one epoch over the training dataset...")
    for i in range(x_train.shape[0]):
        train_one_sample(x_train[i], y_train[i], learning_rate)
    print("Finished training.\n")


def test_and_train():
    train_one_epoch()
    feed_forward_test_data()


if __name__ == "__main__":
    feed_forward_test_data()
    for _ in range(3):
        test_and_train()
