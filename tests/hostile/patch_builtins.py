"""Hostile: breaks a builtin the sandbox's own runner needs (isinstance). Must get: that statement is recorded
as a crash of the runner, the child is replaced, and later definitions are still callable."""
import builtins

builtins.isinstance = lambda obj, cls: True


def after():
    return "still graded"
