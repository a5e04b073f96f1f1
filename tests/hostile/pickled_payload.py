"""Hostile: offers pickled payloads back to the grader (objects with __reduce__, object arrays, a pickle .npy
forged into the exchange dir, forged answer lines). Must get: all arrive as Opaque or are refused; the marker
file that unpickling would create never appears."""
import json
import os
import pickle

import numpy as np

MARKER = "__MARKER__"


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


weights = Evil()
biases = [np.array([Evil()], dtype=object)]


def give_object():
    return Evil()


def give_object_array():
    return np.array([Evil(), Evil()], dtype=object)


def give_pickle_bytes():
    return pickle.dumps(Evil())


def forge_exchange():
    with open("/proc/self/cmdline", "rb") as f:
        config = json.loads(f.read().split(b"\0")[3])
    for n in range(1, 50):
        try:
            np.save(os.path.join(config["outbox"], f"c{n}.npy"), np.array([Evil()], dtype=object),
                    allow_pickle=True)
        except OSError:
            pass
    os.write(config["answer_fd"], b'{"id": null, "value": {"$": "ndarray", "file": "c1.npy"}}\n')
    os.write(config["answer_fd"], b"garbage that is not json\n")
    return np.arange(3)
