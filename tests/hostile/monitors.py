"""Hostile: goes after the processes above it that it can see in /proc (bubblewrap's monitors, outside its
user namespace, where a new user namespace could still be made): writes their memory, signals them. Must get:
no memory opened, no signal delivered, the run goes on."""
import os
import signal

reached = []
me = os.path.realpath("/proc/self")
for entry in os.listdir("/proc"):
    if not entry.isdigit() or os.path.realpath(f"/proc/{entry}") == me:
        continue
    try:
        os.close(os.open(f"/proc/{entry}/mem", os.O_RDWR))
        reached.append(f"/proc/{entry}/mem")
    except OSError:
        pass
for pid in (0, -1, 2, 3):
    try:
        os.kill(pid, signal.SIGSTOP if pid > 0 else 0)
        if pid > 0:
            reached.append(f"kill {pid}")
            os.kill(pid, signal.SIGCONT)
    except OSError:
        pass


def after():
    return "still graded"
