"""What each of the student's globals is, for the grader: kind, type, signature, shape and dtype."""

import inspect
import types

from .exchange import opaque
from .frozen import np


def describe(value):
    """{"type_name", "kind", ...}: a function's signature, an array's shape and dtype, a container's length."""
    kind = type(value)
    info = {"type_name": f"{kind.__module__}.{kind.__qualname__}"}
    if isinstance(value, types.FunctionType):
        info.update(kind="function", signature=signature_of(value))
    elif isinstance(value, type):
        info["kind"] = "class"
    elif isinstance(value, types.ModuleType):
        info["kind"] = "module"
    elif isinstance(value, np.ndarray):
        info.update(kind="ndarray", shape=list(value.shape), dtype=str(value.dtype))
    elif isinstance(value, (list, tuple, dict)):
        info.update(kind=kind.__name__ if kind in (list, tuple, dict) else "object", length=len(value))
    elif value is None or isinstance(value, (bool, int, float, complex, str, bytes, set, np.generic)):
        scalar = "scalar" if isinstance(value, np.generic) else kind.__name__
        info["kind"] = "none" if value is None else scalar
    elif callable(value):
        info.update(kind="callable", signature=signature_of(value))
    else:
        info["kind"] = "object"
    return info


def signature_of(function):
    """[{name, kind, has_default, default_repr}] of a callable's parameters; None if it has no signature."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    return [{"name": p.name, "kind": p.kind.name, "has_default": p.default is not p.empty,
             "default_repr": None if p.default is p.empty else opaque(p.default)["repr"]} for p in parameters]
