"""Paths into the student's globals (tuples of steps from ("g", name)): reading, writing and naming them.

Steps: ("i", index) and ("k", key) subscript, ("a", name) attribute, ("d", i) / ("kd", name) a function's
default, ("c", i) a closure cell, ("self", None) a bound method's object."""


def resolve(ns, path):
    """The value at a path (raises LookupError, AttributeError, IndexError, ... when it is gone)."""
    value = ns[path[0][1]]
    for kind, key in path[1:]:
        if kind in ("i", "k"):
            value = value[key]
        elif kind == "a":
            value = getattr(value, key)
        elif kind == "d":
            value = value.__defaults__[key]
        elif kind == "kd":
            value = value.__kwdefaults__[key]
        elif kind == "c":
            value = value.__closure__[key].cell_contents
        else:
            value = value.__self__
    return value


def assign(ns, path, new):
    """Put `new` at a path, rebuilding a tuple on the way if one holds it; False if that is impossible."""
    if len(path) == 1:
        ns[path[0][1]] = new
        return True
    parent = resolve(ns, path[:-1])
    kind, key = path[-1]
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
        else:
            text += ".__self__"
    return text
