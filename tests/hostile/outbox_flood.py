"""Hostile: floods its answer folder, working folder and /dev/shm with many files and with big ones. Must get:
each write stops at the size of its tmpfs, nothing reaches the host disk, the grader sweeps the answer folder
without holding its listing, and the run goes on."""
import json
import os

with open("/proc/self/cmdline", "rb") as f:
    OUTBOX = json.loads(f.read().split(b"\0")[3])["outbox"]

stopped = {}
for folder in (OUTBOX, ".", "/dev/shm", "/tmp"):
    written = 0
    try:
        for i in range(1000):  # 1 MB files: below the file-size limit, so only the tmpfs's size stops them
            with open(os.path.join(folder, f"big{i}"), "wb") as f:
                f.write(b"\1" * 2**20)
            written += 2**20
    except OSError as exc:
        stopped[folder] = [written, exc.strerror]
    for i in range(1000):
        try:
            os.unlink(os.path.join(folder, f"big{i}"))
        except OSError:
            break

for i in range(20_000):
    open(os.path.join(OUTBOX, f"many{i}.npy"), "w").close()


def after():
    return sorted(os.listdir(OUTBOX))[:3]
