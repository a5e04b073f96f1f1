"""Hostile: a (bounded) fork bomb. Must get: fork fails at the process limit; the grader survives; nothing
is left running after the sandbox closes."""
import os
import time

children = []
for _ in range(300):
    pid = os.fork()
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    children.append(pid)


def after():
    return len(children)
