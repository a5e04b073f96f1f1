# kv2154's submission (Karan Vora, ECE-GY 7143 Assignment 1, Question 5), the seed of this project:
# transcribed from the OCR scan ../shared/seeds/000_8e1f3f2e12b21969.txt into a .py that runs the way the
# student's notebook ran, cell by cell. It imports tensorflow (only to load MNIST) and matplotlib, and trains
# at top level. The student's run printed test accuracies 10.25 %, 41.75 %, 49.34 %, 56.64 % and
# "Average loss: inf" every time.
#
# Repaired (OCR damage only): `import numpy as no` -> np, `matplotlib.pvplot` -> pyplot, `FirstHiddenLaver`,
# `FirstLayerBlases`, `hiases`, LaTeX debris (`\textbf{return} \ \text{np.where(}`, `\textbf{from} ...`),
# the lost indentation, and lines the scan dropped: `import tensorflow as tf`, `def sigmoid(x):`,
# `def softmax(x):`, `weights = [Weight1, Weight2, Weight3]`, `sample = x[i]` / `label = y[i]` in
# feed_forward_dataset, its two print lines (the handout's own), the `for i in range(len(weights)):` of the
# final update, and the `for i in range(3):` around test_and_train() (the output shows three epochs).
# In feed_forward_sample, `sample.append(a)` sits after the if/else: with it inside the sigmoid branch only,
# `output` would be the 32 hidden units and one_hot_guess[0, argmax] would raise IndexError, yet the student
# got 10.25 % and "Average loss: inf", which only the softmax output gives.
#
# Real mistakes of the student's, kept exactly as written:
#  1. Q1 ignores `rng = default_rng(80085)`: weights come from the unseeded global np.random (not the
#     handout's init, not reproducible).
#  2. Q1 draws Weight3 from np.random.rand, UNIFORM on [0, 1) (all positive, mean 0.088), not from a normal
#     distribution with mean 0.
#  3. Q1 biases have shape (1, n) instead of (n,), so every z, activation and guess is (1, n).
#  4. Q2 feed_forward_sample calls cross_entropy_loss(output, y_one_hot) with the arguments swapped:
#     -sum(yHat * log(one_hot)) = -sum(p * log 0) = inf for every sample ("divide by zero encountered in
#     log", "Average loss: inf"). feed_forward_sample also returns a (1, 10) one_hot_guess, not (10,).
#  5. Q3 (final train_one_sample) b2 gradient: SecondLayerBiases = SecondLastLayer, i.e. delta3 @ W3.T
#     without the sigma'(z2) factor (should be SecondLastLayerUpdate).
#  6. Q3 backpropagates the un-multiplied delta: FirstLastLayer = SecondLastLayer.dot(weights[1].T) uses
#     SecondLastLayer instead of SecondLastLayerUpdate, so sigma'(z2) is missing from the W1 and b1
#     gradients (FirstLayerWeights = x.T @ ((delta3 @ W3.T) @ W2.T * sigma'(z1))).
#  7. Q3 b1 gradient: FirstLayerBiases = FirstLastLayer, without sigma'(z1) (and without sigma'(z2), by 6).
#  The W3, b3 and W2 gradients are correct. train_one_sample also computes an unused loss and guess.

import tensorflow as tf
import matplotlib.pyplot as plt
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data(path="mnist.npz")
plt.imshow(x_train[0],cmap='gray')


import numpy as np
from math import exp

def sigmoid(x):
    # Numerically stable sigmoid function based on
    # http://timvieira.github.io/blog/post/2014/22/11/exp-normalize-trick/
    x = np.clip(x, -500, 500) # We get an overflow warning without this

    return np.where(
        x >= 0,
        1 / (1 + np.exp(-x)),
        np.exp(x) / (1 + np.exp(x))
    )

def dsigmoid(x): # Derivative of sigmoid
    return sigmoid(x) * (1 - sigmoid(x))

def softmax(x):
    # Numerically stable softmax based on (same source as sigmoid)
    # http://timvieira.github.io/blog/post/2014/02/11/exp-normalize-trick/
    b = x.max()
    y = np.exp(x - b)
    return y / y.sum()

def cross_entropy_loss(y, yHat):
    return -np.sum(y * np.log(yHat))

def integer_to_one_hot(x, max):
    # x: integer to convert to one hot encoding
    # max: the size of the one hot encoded array
    result = np.zeros(10)
    result[x] = 1
    return result


import math

# Initialize weights of each layer with a normal distribution of mean 0 and
# standard deviation 1/sqrt(n), where n is the number of inputs.
# This means the weighted input will be a random variable itself with mean
# 0 and standard deviation close to 1 (if biases are initialized as 0, standard
# deviation will be exactly 1)

from numpy.random import default_rng

rng = default_rng(80085)

# Q1. Fill initialization code here.
# weights =
# biases =
InputLayerSize = 784
FirstHiddenLayer = 32
SecondHiddenLayer = 32
OutputLayer = 10

Weight1 = np.random.randn(InputLayerSize, FirstHiddenLayer) * np.sqrt(1 / max(InputLayerSize, FirstHiddenLayer))
Bias1 = np.zeros((1, FirstHiddenLayer))
Weight2 = np.random.randn(FirstHiddenLayer, SecondHiddenLayer) * np.sqrt(1 / max(FirstHiddenLayer, SecondHiddenLayer))
Bias2 = np.zeros((1, SecondHiddenLayer))
Weight3 = np.random.rand(SecondHiddenLayer, OutputLayer) * np.sqrt(1 / max(SecondHiddenLayer, OutputLayer))
Bias3 = np.zeros((1, OutputLayer))

# max_n_m = max(InputLayerSize, FirstHiddenLayer)
# Weight1 = rng.normal(loc=0, scale=1/math.sqrt(max_n_m), size=(InputLayerSize, FirstHiddenLayer))
# Bias1 = np.zeros(FirstHiddenLayer)
# max_n_m = max(FirstHiddenLayer, SecondHiddenLayer)
# weight2 = rng.normal(loc=0, scale=1/math.sqrt(max_n_m), size=(FirstHiddenLayer, SecondHiddenLayer))
# Bias2 = np.zeros(SecondHiddenLayer)
# max_n_m = max(SecondHiddenLayer, OutputLayer)
# Weight3 = rng.normal(loc=0, scale=1/math.sqrt(max_n_m), size=(SecondHiddenLayer, OutputLayer))
# Bias3 = np.zeros(OutputLayer)

weights = [Weight1, Weight2, Weight3]
biases = [Bias1, Bias2, Bias3]


def feed_forward_sample(sample, y):
    """ Forward pass through the neural network.
      Inputs:
        sample: 1D numpy array. The input sample (an MNIST digit).
        label: An integer from 0 to 9.

      Returns: the cross entropy loss, most likely class
    """
    # Q2. Fill code here.
    sample = [sample]
    for i in range(len(weights)):
        z = np.dot(sample[-1].flatten().T, weights[i])
        z = z + biases[i]
        if(i < len(weights) - 1):
            a = sigmoid(z)
        else:
            a = softmax(z)
        sample.append(a)

    # Compute cross entropy loss
    y_one_hot = np.zeros((1, 10))
    y_one_hot[0, y] = 1
    output = sample[-1]
    loss = cross_entropy_loss(output, y_one_hot)

    # Compute most likely class
    one_hot_guess = np.zeros((1, 10))
    one_hot_guess[0, np.argmax(output)] = 1

    return loss, one_hot_guess


def feed_forward_dataset(x, y):
    losses = np.empty(x.shape[0])
    one_hot_guesses = np.empty((x.shape[0], 10))

    # Q2. Fill code here to calculate losses, one_hot_guesses
    for i in range(x.shape[0]):
        sample = x[i]
        label = y[i]
        loss, one_hot_guess = feed_forward_sample(sample, label)
        losses[i] = loss
        one_hot_guesses[i, :] = one_hot_guess

    y_one_hot = np.zeros((y.size, 10))
    y_one_hot[np.arange(y.size), y] = 1

    correct_guesses = np.sum(y_one_hot * one_hot_guesses)
    correct_guess_percent = format((correct_guesses / y.shape[0]) * 100, ".2f")

    print("\nAverage loss:", np.round(np.average(losses), decimals=2))
    print("Accuracy (# of correct guesses):", correct_guesses, "/", y.shape[0], "(", correct_guess_percent, "%)")

def feed_forward_training_data():
    print("Feeding forward all training data...")
    feed_forward_dataset(x_train, y_train)
    print("")

def feed_forward_test_data():
    print("Feeding forward all test data...")
    feed_forward_dataset(x_test, y_test)
    print("")

feed_forward_test_data()


# Two earlier drafts of train_one_sample, commented out in the student's notebook:
#
# def train_one_sample(sample, y, learning_rate=0.003):
#     a = sample.flatten()
#     # We will store each layer's activations to calculate gradient
#     activations = []
#     # Forward pass
#     for i in range(len(weights)):
#         z = np.dot(a, weights[i])
#         z = z + biases[i]
#         if(i < len(weights) - 1):
#             a = sigmoid(z)
#             activations.append(a)
#         else:
#             a = softmax(z)
#     delta = -(y - activations[-1]) * dsigmoid(activations[-1])
#     weight_gradients = []
#     bias_gradients = []
#     for i in reversed(range(len(weights))):
#         weight_gradients.insert(0, np.outer(delta, activations[i]))
#         bias_gradients.insert(0, delta)
#         if i > 0:
#             delta = (np.dot(weights[i], delta.T)) * (dsigmoid(activations[i]))
#     # Update weights & biases based on your calculated gradient
#     for i in range(len(weights)):
#         weights[i] -= weight_gradients[i] * learning_rate
#         biases[i] -= bias_gradients[i] * learning_rate
#
# def train_one_sample(sample, y, learning_rate=0.003):
#     # We will store each layer's activations to calculate gradient
#     activations = [a]
#     # Forward pass
#     for i in range(len(weights)):
#         z = np.dot(activations[-1], weights[i]) + biases[i]
#         if i == len(weights) - 1:
#             a = softmax(z)
#         else:
#             a = sigmoid(z)
#     # Backward pass
#     weight_gradients = []
#     bias_gradients = []
#     for i in reversed(range(len(weights))):
#         if i == len(weights) - 1:
#             delta *= dsigmoid(activations[i])
#         else:
#             delta = np.dot(delta, weights[i+1].T) * dsigmoid(activations[i])
#         weight_gradients.insert(0, np.dot(activations[i].reshape(-1, 1), delta))
#         bias_gradients.insert(0, delta)
#     # Update weights & biases based on your calculated gradient
#     # weights[i] -= weight_gradients[i].T * learning_rate
#     # biases[i] -= bias_gradients[i].flatten() * learning_rate
#     for i in range(len(weights)):
#         weights[i] -= weight_gradients[i] * learning_rate
#         biases[i] -= bias_gradients[i] * learning_rate


def train_one_sample(sample, y, learning_rate=0.003):
    a = np.reshape(sample,(1,28*28))

    # We will store each layer's activations to calculate gradient
    activations = []
    #activations = np.array(a)

    FirstLayer = np.dot(a, weights[0]) + biases[0]
    FirstLayerActivation = sigmoid(FirstLayer)
    SecondLayer = np.dot(FirstLayerActivation, weights[1]) + biases[1]
    SecondLayerActivation = sigmoid(SecondLayer)
    ThirdLayer = np.dot(SecondLayerActivation, weights[2]) + biases[2]
    ThirdLayerActivation = softmax(ThirdLayer)

    # Q3. This should be the same as what you did in feed_forward_sample above.
    prediction = np.argmax(ThirdLayerActivation)
    one_hot_guess = integer_to_one_hot(prediction,10)
    loss = cross_entropy_loss(integer_to_one_hot(y, 10), ThirdLayerActivation)

    # Q3. Implement backpropagation by backward-stepping gradients through each layer.
    # You may need to be careful to make sure your Jacobian matrices are the right shape.
    # At the end, you should get two vectors: weight_gradients and bias_gradients.
    LastLayer = ThirdLayerActivation - integer_to_one_hot(y,10)
    LastLayerWeights = SecondLayerActivation.T.dot(LastLayer)
    LastLayerBiases = LastLayer

    SecondLastLayer = LastLayer.dot(weights[2].T)
    SecondLastLayerUpdate = np.multiply(SecondLastLayer, dsigmoid(SecondLayer))
    SecondLastLayerWeights = FirstLayerActivation.T.dot(SecondLastLayerUpdate)
    SecondLayerBiases = SecondLastLayer

    FirstLastLayer = SecondLastLayer.dot(weights[1].T)
    FirstLayerUpdate = np.multiply(FirstLastLayer, dsigmoid(FirstLayer))
    FirstLayerWeights = a.T.dot(FirstLayerUpdate)
    FirstLayerBiases = FirstLastLayer

    weight_gradients = [FirstLayerWeights, SecondLastLayerWeights, LastLayerWeights]
    bias_gradients = [FirstLayerBiases, SecondLayerBiases, LastLayerBiases]

    for i in range(len(weights)):
        weights[i] = weights[i] - learning_rate * weight_gradients[i]
        biases[i] = biases[i] - learning_rate * bias_gradients[i]


def train_one_epoch(learning_rate=0.003):
    print("Training for one epoch over the training dataset...")

    # Q4. Write the training loop over the epoch here.
    for values in range(x_train.shape[0]):
        train_one_sample(x_train[values], y_train[values], learning_rate)

    print("Finished training.\n")

feed_forward_test_data()

def test_and_train():
    train_one_epoch()
    feed_forward_test_data()

for i in range(3):
    test_and_train()
