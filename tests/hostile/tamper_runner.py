"""Hostile: tries to change the grader's own code in its box (the runner script and its package `inside`, which
a restarted child loads again): append to each file, chmod it, rename it away, plant new files and a bytecode
cache beside them. Must get: every attempt fails, the box's files stay as the grader made them, and a child
restarted after a time-out still answers."""
import os
import sys

entry = sys.modules["__main__"].__file__
package = os.path.dirname(sys.modules["inside"].__file__)
changed = []
for path in [entry] + [os.path.join(package, name) for name in sorted(os.listdir(package))]:
    try:
        with open(path, "a") as f:
            f.write("\nraise SystemExit('tampered')\n")
        changed.append(f"appended to {path}")
    except OSError:
        pass
    try:
        os.chmod(path, 0o777)
        changed.append(f"chmod {path}")
    except OSError:
        pass
    try:
        os.rename(path, path + ".moved")
        changed.append(f"renamed {path}")
    except OSError:
        pass
for folder in (os.path.dirname(entry), package):
    for name in ("planted.py", "__pycache__"):
        try:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "x") as f:
                    f.write("raise SystemExit('planted')\n")
            else:
                os.mkdir(os.path.join(folder, name))
            changed.append(f"created {folder}/{name}")
        except OSError:
            pass


def hang():
    while True:
        pass


def after():
    return "still graded"
