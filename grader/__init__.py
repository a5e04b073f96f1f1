"""Autograder for the from-scratch numpy MNIST backpropagation homework."""

__version__ = "0.1.0"
