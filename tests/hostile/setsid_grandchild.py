"""Hostile: a grandchild that calls setsid() and keeps running, then a hang. Must get: the time-out kill ends
the grandchild too (PID namespace). Each run marks its grandchild, so the one the replay after the time-out
starts is told apart from the one the kill must have ended."""
import os

mark = "__TOKEN__" + str(int.from_bytes(os.urandom(3), "big"))
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", mark])
    os._exit(0)
while True:
    pass


def after():
    return "still graded"
