"""Hostile: a grandchild that calls setsid() and keeps running, then a hang. Must get: the time-out kill ends
the grandchild too (PID namespace)."""
import os

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "__TOKEN__"])
    os._exit(0)
while True:
    pass


def after():
    return "still graded"
