"""Hostile: floods stdout, stderr and fd 1. Must get: output kept up to the limit with a note; fd writes stop
at the file-size limit (EFBIG), and the run goes on."""
import os
import sys

for i in range(20_000):
    print("spam", i)

for i in range(20_000):
    sys.stderr.write(f"warn {i}\n")

while True:
    os.write(1, b"x" * 65536)


def loud():
    print("y" * 1_000_000)
    return 7
