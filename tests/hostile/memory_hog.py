"""Hostile: memory hogs (one huge allocation, then a growing one). Must get: MemoryError recorded, run goes on."""
import numpy as np

huge = np.ones(1 << 31)

chunks = []
while True:
    chunks.append(np.zeros(50 * 2**20 // 8))


def after():
    return "still graded"
