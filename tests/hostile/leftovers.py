"""Hostile: leaves files in every world-writable place it can find (/run/lock, /dev/shm, /tmp, /var/tmp, its
home, its working folder), then hangs so that it is killed. Must get: nothing of it on the machine, nor in the
next child of the same submission, nor in the next submission's sandbox (leftovers_reader.py)."""
import os
import uuid

mine = uuid.uuid4().hex  # a new one in each child: a replay after the kill writes under another name
written = []
for folder in ("/run/lock", "/dev/shm", "/tmp", "/var/tmp", os.path.expanduser("~"), os.getcwd(), "/run"):
    try:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"__TOKEN__-{mine}")
        with open(path, "w") as f:
            f.write("weights captured from the grader\n")
        written.append(path)
    except OSError:
        pass

while True:  # killed by the cell time-out: the files must go with it
    pass

def seen():
    """Every file of this submission in those places: only the current child's may be there."""
    found = []
    for folder in ("/run/lock", "/dev/shm", "/tmp", "/var/tmp", os.path.expanduser("~"), os.getcwd(), "/run"):
        try:
            found += [os.path.join(folder, n) for n in os.listdir(folder) if "__TOKEN__" in n]
        except OSError:
            pass
    return mine, sorted(found)
