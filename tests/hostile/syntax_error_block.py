"""Hostile: one block with a syntax error. Must get: only that block fails, with its line number."""
import numpy as np


def good(x):
    return x + 1


def broken(x:
    return x


after = good(41)
