"""Hostile: on a course server laid out as /srv/course (solutions, roster, private rubric with its seed, old
reports of other students, a second copy of the MNIST file with every test label), reads what it can name and
searches the whole filesystem for anything of the course. Must get: nothing read, nothing found."""
import os
import sys

leaked = []
for path in ("__SRV__/solutions/hw1_key.py", "__SRV__/roster.csv", "__SRV__/rubric_private.yaml",
             "__SRV__/reports_hw1/ab123.json", "__SRV__/data/mnist.npz", "__MNIST__"):
    try:
        with open(path, "rb") as f:
            if f.read(1):
                leaked.append(path)
    except OSError:
        pass
for folder in ("__SRV__", os.path.dirname("__SRV__"), "/srv", "/work", "/home", "/opt", "/mnt", "/var/lib"):
    try:
        if os.listdir(folder):
            leaked.append(folder)
    except OSError:
        pass

found = []
for root, dirs, files in os.walk("/", onerror=lambda error: None):
    if root in ("/proc", "/sys", "/usr", sys.prefix, sys.base_prefix):  # the Python it was given is no secret
        dirs[:] = []
        continue
    for name in files + dirs:
        if any(mark in name for mark in ("hw1_key", "roster", "rubric_private", "reports_hw1", "__TOKEN__")):
            found.append(os.path.join(root, name))
    found += [os.path.join(root, n) for n in files if n.endswith(".npz") and root != "/box/scratch"]


def after():
    return "still graded"
