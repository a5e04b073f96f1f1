"""Hostile: a loop that swallows every interrupt and ignores SIGINT/SIGTERM. Must get: timeout from outside."""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    try:
        while True:
            pass
    except BaseException:
        pass


def after():
    return "still graded"
