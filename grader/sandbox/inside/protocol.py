"""The child's side of the pipe protocol: a hello carrying the probe, then one newline-delimited JSON answer per
request until "exit". Arrays travel as .npy files in the exchange folders (exchange.py), never pickled."""

import json
import os
import resource
import sys

from .environment import prepare_environment
from .probe import probe
from .requests import Runner

# Taken before any student code runs, so patching json/os attributes cannot reach the protocol.
_dumps, _loads, _write = json.dumps, json.loads, os.write


def serve(runner, requests, answers):
    """Answer each request line with `runner.op_<op>(request)`, or with a protocol_error naming what broke."""
    for line in requests:
        req = {}
        try:
            req = _loads(line)
            answer = getattr(runner, "op_" + req["op"])(req) if req["op"] != "exit" else {}
        except Exception as exc:  # the runner's own failure (e.g. student code broke json): say so
            answer = {"protocol_error": f"{type(exc).__name__}: {exc}"[:2000]}
        answer["id"] = req.get("id")
        try:
            send(answers, answer)
        except Exception as exc:  # e.g. a builtin json needs was replaced: say so without json
            send_failure(answers, req.get("id"), exc)
        if req.get("op") == "exit":
            break


def send(stream, answer):
    """One answer as a line of ASCII JSON, written whole to the answer pipe."""
    data = (_dumps(answer, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
    view = memoryview(data)
    while view:
        view = view[_write(stream, view):]


def send_failure(stream, request_id, exc):
    """A protocol_error answer built by hand (only str operations), for when json itself is broken."""
    safe = "".join(c for c in f"{type(exc).__name__}: {exc}"[:200] if c.isalnum() or c in " .:_-")
    ident = "".join(c for c in str(request_id) if c.isalnum() or c == "-")
    line = '{"id": "' + ident + '", "protocol_error": "cannot encode the answer: ' + safe + '"}\n'
    _write(stream, line.encode("ascii", "replace"))


def main(entry):
    """The child's life: probe, hello, the student's environment, then requests until "exit" (`entry`: the
    script that started it, /box/runner.py)."""
    config = json.loads(sys.argv[1])
    requests = os.fdopen(config["request_fd"], "rb")
    answers = config["answer_fd"]
    report = probe(config, entry)
    if config.get("nproc"):  # after the probe's own fork; counted in the sandbox's user namespace: its processes
        resource.setrlimit(resource.RLIMIT_NPROC, (config["nproc"], config["nproc"]))
    report["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    send(answers, {"id": "hello", "probe": report})
    prepare_environment(config)
    serve(Runner(config), requests, answers)
    sys.stdout.flush()
    os._exit(0)  # do not wait for threads the student left running
