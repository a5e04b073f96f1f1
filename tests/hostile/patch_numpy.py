"""Hostile: patches numpy, builtins and json in its own process. Must get: the grader's numpy is unaffected and
values still travel correctly."""
import builtins
import json

import numpy as np

np.allclose = lambda *args, **kwargs: True
np.isclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
np.save = lambda *args, **kwargs: None
np.load = lambda *args, **kwargs: None
builtins.abs = lambda x: 0
json.dumps = lambda *args, **kwargs: '{"id": "forged", "value": 100}'
json.loads = lambda *args, **kwargs: {"op": "exit"}


def double(a):
    return a * 2
