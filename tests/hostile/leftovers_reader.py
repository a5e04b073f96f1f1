"""Hostile: looks for what an earlier submission (leftovers.py) left behind. Must get: nothing."""
import os

seen = []
for folder in ("/run/lock", "/dev/shm", "/tmp", "/var/tmp", os.path.expanduser("~"), os.getcwd(), "/run"):
    try:
        seen += [os.path.join(folder, n) for n in os.listdir(folder) if "__TOKEN__" in n]
    except OSError:
        pass
