"""Hostile: writes forged answers straight into the answer pipe (its number is in the runner's command line; the
request id is in the runner's frame): a line longer than the grader reads, a line of millions of tiny lists,
and the costliest line within every bound. Must get: the first two an error of that call naming the limit; the
last read, and the grader's memory within its budget."""
import json
import os
import sys

with open("/proc/self/cmdline", "rb") as f:
    config = json.loads(f.read().split(b"\0")[3])
ANSWERS = config["answer_fd"]


def request_id():
    frame = sys._getframe()
    while frame is not None:
        if isinstance(frame.f_locals.get("req"), dict) and "id" in frame.f_locals["req"]:
            return frame.f_locals["req"]["id"]
        frame = frame.f_back
    return "?"


def forge(line):
    view = memoryview(line)
    while view:
        view = view[os.write(ANSWERS, view):]


def too_long():
    forge(b'{"id": "' + request_id().encode() + b'", "value": "' + b"x" * (40 * 2**20) + b'"}\n')
    return "forged"


def too_many_lists():
    forge(b'{"id": "' + request_id().encode() + b'", "value": [' + b"[]," * (5 * 2**20) + b'[]]}\n')
    return "forged"


def costliest_within_bounds():
    items = b",".join([b'"abcdefghijk"'] * 990_000)
    forge(b'{"id": "' + request_id().encode() + b'", "value": [' + items + b'], "error": null}\n')
    return "forged"
