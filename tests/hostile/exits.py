"""Hostile: exits at top level in every way (sys.exit, exit(), os._exit, a segfault). Must get: each recorded
(kind exit/crash), the run goes on, and later definitions are still callable."""
import sys

sys.exit(0)
exit(3)
import os

os._exit(0)
import ctypes

ctypes.string_at(0)


def after():
    return "still graded"


def exits_in_call():
    sys.exit("bye")
