"""The sandbox child's entry point, and the child side's names as the grader imports them.

In the child: `python -I /box/runner.py CONFIG_JSON`. The grader's package is hidden from the child, so this
script loads the child's own code, the package `inside` bound read-only beside it (/box/inside), by its file
location: isolated mode puts neither this folder nor the working folder on sys.path, and the box folder may not
be listable (root-owned, 711, with the fallback engine), which a sys.path entry would need. The student's
sys.path stays as it would be without the grader. In the grader (`grader.sandbox.runner`): the same code,
re-exported for what runs in-process too (kernel_box.py, kernel_state.py, questions/q3_backprop.py).
"""

import os
import sys

if __name__ == "__main__":
    import importlib.util

    _PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inside", "__init__.py")
    _SPEC = importlib.util.spec_from_file_location("inside", _PACKAGE)  # a package: its folder is its __path__
    sys.modules["inside"] = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(sys.modules["inside"])
    from inside.protocol import main

    main(os.path.abspath(__file__))
else:
    from .inside.capture import BoundedWriter
    from .inside.environment import no_input as _no_input
    from .inside.errors import TRACEBACK_CHARS, error_of
    from .inside.exchange import NUMERIC_KINDS, Exchange
    from .inside.network_map import NetworkMap
    from .inside.network_walk import names_used_by_functions, network_arrays
    from .inside.recording import sample_key
    from .inside.requests import Runner
    from .inside.symbols import describe
    from .inside.tracing import StepTracer

    __all__ = ["NUMERIC_KINDS", "TRACEBACK_CHARS", "BoundedWriter", "Exchange", "NetworkMap", "Runner", "StepTracer",
               "_no_input", "describe", "error_of", "names_used_by_functions", "network_arrays", "sample_key"]
