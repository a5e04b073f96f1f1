# A handout-style submission: tensorflow for MNIST, matplotlib, (1, n) biases, list items rebound.
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data(path="mnist.npz")
plt.imshow(x_train[0], cmap="gray")
plt.show()


def sigmoid(x):
    x = np.clip(x, -500, 500)
    return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def softmax(x):
    y = np.exp(x - x.max())
    return y / y.sum()


def integer_to_one_hot(x, max):
    result = np.zeros(max)
    result[x] = 1
    return result


from numpy.random import default_rng

rng = default_rng(80085)
sizes = [784, 32, 32, 10]
weights = [rng.normal(0, np.sqrt(1 / max(n, m)), size=(n, m)) for n, m in zip(sizes[:-1], sizes[1:])]
biases = [np.zeros((1, m)) for m in sizes[1:]]


def feed_forward_sample(sample, y):
    """Forward pass; returns (loss, one_hot_guess (1, 10))."""
    a = np.reshape(sample, (1, 784))
    for i in range(len(weights)):
        z = a @ weights[i] + biases[i]
        a = softmax(z) if i == len(weights) - 1 else sigmoid(z)
    loss = -np.log(a[0, y])
    one_hot_guess = np.zeros((1, 10))
    one_hot_guess[0, np.argmax(a)] = 1
    return loss, one_hot_guess


def feed_forward_dataset(x, y):
    losses = np.empty(x.shape[0])
    correct = 0
    for i in range(x.shape[0]):
        loss, guess = feed_forward_sample(x[i], y[i])
        losses[i] = loss
        correct += guess[0, y[i]]
    print("Average loss:", np.round(np.mean(losses), decimals=2))
    print("Accuracy (# of correct guesses):", correct, "/", x.shape[0], "(", correct / x.shape[0] * 100, "%)")


def feed_forward_test_data():
    print("Feeding forward all test data...")
    feed_forward_dataset(x_test, y_test)


feed_forward_test_data()


def train_one_sample(sample, y, learning_rate=0.003):
    a = np.reshape(sample, (1, 784))
    activations, zs = [a], []
    for i in range(len(weights)):
        z = activations[-1] @ weights[i] + biases[i]
        zs.append(z)
        activations.append(softmax(z) if i == len(weights) - 1 else sigmoid(z))
    delta = activations[-1] - integer_to_one_hot(y, 10)
    weight_gradients, bias_gradients = [None] * 3, [None] * 3
    for i in reversed(range(len(weights))):
        weight_gradients[i] = activations[i].T @ delta
        bias_gradients[i] = delta
        if i > 0:
            s = sigmoid(zs[i - 1])
            delta = (delta @ weights[i].T) * s * (1 - s)
    for i in range(len(weights)):
        weights[i] = weights[i] - learning_rate * weight_gradients[i]
        biases[i] = biases[i] - learning_rate * bias_gradients[i]


def train_one_epoch(learning_rate=0.003):
    print("Training for one epoch over the training dataset...")
    for values in range(x_train.shape[0]):
        train_one_sample(x_train[values], y_train[values], learning_rate)
    print("Finished training.\n")


def test_and_train():
    train_one_epoch()
    feed_forward_test_data()


for i in range(1):
    test_and_train()
