"""Paths into the student's globals (tuples of steps from ("g", name)): reading, writing and naming them.

Steps: ("i", index) and ("k", key) subscript, ("a", name) attribute, ("d", i) / ("kd", name) a function's
default, ("c", i) a closure cell, ("self", None) a bound method's object, ("v", (axis, start, stop)) or
("v", (axis, i)) rows or columns of an array (the weight and bias parts of a matrix with the bias folded in)."""


def resolve(ns, path):
    """The value at a path (raises LookupError, AttributeError, IndexError, ... when it is gone)."""
    value = ns[path[0][1]]
    for step in path[1:]:
        value = resolve_step(value, step)
    return value


def resolve_step(value, step):
    """The value one step further (see the module's docstring)."""
    kind, key = step
    if kind in ("i", "k"):
        return value[key]
    if kind == "a":
        return getattr(value, key)
    if kind == "d":
        return value.__defaults__[key]
    if kind == "kd":
        return value.__kwdefaults__[key]
    if kind == "c":
        return value.__closure__[key].cell_contents
    if kind == "v":
        return value[_view_index(key)]
    return value.__self__


def _view_index(key):
    """("v", (axis, start, stop)) -> rows or columns start:stop; ("v", (axis, i)) -> row or column i."""
    axis, *where = key
    index = slice(*where) if len(where) == 2 else where[0]
    return index if axis == 0 else (slice(None), index)


def same_view(a, b):
    """Two views of the same memory, shape and strides (each step into an augmented matrix makes a new one)."""
    return (getattr(a, "base", None) is not None and getattr(a, "base", None) is getattr(b, "base", None)
            and a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def assign(ns, path, new):
    """Put `new` at a path, rebuilding a tuple on the way if one holds it; False if that is impossible."""
    if len(path) == 1:
        ns[path[0][1]] = new
        return True
    parent = resolve(ns, path[:-1])
    kind, key = path[-1]
    if kind == "v":  # a part of the student's array: written into it, never rebound
        view = resolve_step(parent, path[-1])
        if getattr(view, "shape", None) != getattr(new, "shape", ()):
            return False
        view[...] = new
        return True
    if kind in ("i", "d") and isinstance(parent, tuple) or kind == "d":
        items = list(parent.__defaults__ if kind == "d" else parent)
        items[key] = new
        if kind == "d":
            parent.__defaults__ = tuple(items)
            return True
        return assign(ns, path[:-1], type(parent)(items) if type(parent) is tuple else tuple(items))
    if kind in ("i", "k"):
        parent[key] = new
    elif kind == "a":
        setattr(parent, key, new)
    elif kind == "kd":
        parent.__kwdefaults__[key] = new
    elif kind == "c":
        parent.__closure__[key].cell_contents = new
    else:
        return False
    return True


def path_key(path):
    """A path for the grader: [global, key, ...], attributes and keys as they are (str/int), else their repr."""
    keys = []
    for kind, key in path:
        if kind in ("d", "kd", "c", "self"):
            keys.append({"d": "__defaults__", "kd": "__kwdefaults__", "c": "__closure__", "self": "__self__"}[kind])
            if key is not None:
                keys.append(key if isinstance(key, (int, str)) else repr(key))
        elif kind == "v":
            keys.append(_view_text(key))
        else:
            keys.append(key if isinstance(key, (int, str)) and not isinstance(key, bool) else repr(key))
    return keys


def path_text(path):
    """("g", "layers"), ("i", 0), ("a", "W") -> "layers[0].W"."""
    text = ""
    for kind, key in path:
        if kind == "g":
            text = key
        elif kind in ("i", "k"):
            text += f"[{key!r}]"
        elif kind == "a":
            text += f".{key}"
        elif kind == "d":
            text += f".__defaults__[{key}]"
        elif kind == "kd":
            text += f".__kwdefaults__[{key!r}]"
        elif kind == "c":
            text += f".__closure__[{key}]"
        elif kind == "v":
            text += _view_text(key)
        else:
            text += ".__self__"
    return text


def _view_text(key):
    axis, *where = key
    index = ":".join(map(str, where))
    return f"[{index}]" if axis == 0 else f"[:, {index}]"
