"""Hostile: tries to kill the grader (parent pid, the pid in its own command line, everything with kill -1).
Must get: the grader is untouched; the run goes on."""
import json
import os
import signal

attempts = []
for target in (os.getppid(), -1):
    try:
        os.kill(target, signal.SIGKILL)
        attempts.append((target, "sent"))
    except OSError as exc:
        attempts.append((target, type(exc).__name__))

with open("/proc/self/cmdline", "rb") as f:
    config = json.loads(f.read().split(b"\0")[3])
try:
    os.kill(config["grader_pid"], signal.SIGKILL)
    attempts.append(("grader", "sent"))
except OSError as exc:
    attempts.append(("grader", type(exc).__name__))


def after():
    return "still graded"
