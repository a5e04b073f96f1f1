"""Hostile: returns more arrays than the grader reads in one request (40 x 15 MB), and fills its answer folder
itself. Must get: an error of that call (the per-request limit, or the full answer folder), the grader's
memory within its budget, the host disk untouched."""
import numpy as np


def many_arrays():
    return [np.full(15 * 2**20 // 8, float(i)) for i in range(40)]


def a_few_arrays():
    return [np.full(15 * 2**20 // 8, float(i)) for i in range(3)]


def after():
    return "still graded"
