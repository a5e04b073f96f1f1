# %%
# Exported from Jupyter: in-place updates, (n,) biases, a scaling helper that changes its argument.
import numpy as np
from tensorflow.keras.datasets import mnist

(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train = x_train.reshape(-1, 784)

# %%
%matplotlib inline
rng = np.random.default_rng(80085)
weights, biases = [], []
for n_in, n_out in [(784, 32), (32, 32), (32, 10)]:
    weights.append(rng.normal(0, (1 / max(n_in, n_out)) ** 0.5, size=(n_in, n_out)))
    biases.append(np.zeros(n_out))

# %%
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def train_one_sample(sample, y, learning_rate=0.003):
    activations, zs = [sample.astype(float)], []
    for layer, (w, b) in enumerate(zip(weights, biases)):
        z = activations[-1] @ w + b
        zs.append(z)
        if layer == 2:
            e = np.exp(z - z.max())
            activations.append(e / e.sum())
        else:
            activations.append(sigmoid(z))
    delta = activations[-1].copy()
    delta[y] -= 1
    grads = []
    for layer in (2, 1, 0):
        grads.append((layer, np.outer(activations[layer], delta), delta))
        if layer:
            s = sigmoid(zs[layer - 1])
            delta = (weights[layer] @ delta) * s * (1 - s)
    for layer, gw, gb in grads:
        weights[layer] -= learning_rate * gw
        biases[layer] -= learning_rate * gb


def train_one_epoch(learning_rate=0.003):
    for sample, label in zip(x_train, y_train):
        train_one_sample(sample, label, learning_rate=learning_rate)


def scale_in_place(array, factor=2.0):
    array *= factor
    return float(array.sum())

# %%
train_one_epoch()
print("trained")
