"""The start-up probe: what the child can see and do, reported before any student code runs; the grader
checks it and refuses to go on when isolation does not hold (grader/sandbox/start.py)."""

import os
import socket

OWN_FOLDER = os.path.dirname(os.path.abspath(__file__))


def probe(config, entry):
    """What the child can see and do, reported before any student code runs (the grader checks it)."""
    report = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()), "pid": os.getpid()}
    try:
        with open(config["probe_secret"], "rb") as f:
            report["secret_readable"] = bool(f.read(1) or True)
    except OSError:
        report["secret_readable"] = False
    report["grader_visible"] = os.path.exists(f"/proc/{config['grader_pid']}")
    report["hidden_visible"] = [p for p, allowed in config["hidden"].items() if _visible(p, allowed)]
    report["interfaces"] = [name for _, name in socket.if_nameindex()]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only asks the kernel for a route
        report["network_route"] = True
    except OSError:
        report["network_route"] = False
    report.update(_privileges())
    report["userns_blocked"] = _user_namespace_blocked()
    report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    report["root_entries"] = _listing("/")
    report["etc_entries"] = _listing("/etc") if os.path.isdir("/etc") else []
    report["mounts"] = _writable_mounts()
    report["box_entries"] = _listing(os.path.dirname(entry))
    report["own_code_writable"] = _own_code_writable(entry)
    info = os.stat(config["outbox"])
    report["outbox_id"] = [info.st_dev, info.st_ino]
    return report


def _own_code_writable(entry):
    """The grader's code in the box that this process could change (the grader expects none): the entry
    script, the folder holding it, this package's folder and its files."""
    paths = [os.path.dirname(entry), entry, OWN_FOLDER]
    try:
        paths += [os.path.join(OWN_FOLDER, name) for name in sorted(os.listdir(OWN_FOLDER))]
    except OSError as exc:
        return [f"<{OWN_FOLDER} unreadable: {exc.strerror}>"]
    return [p for p in paths if os.access(p, os.W_OK)]


def _privileges():
    """The capability sets and the no-new-privileges flag, as the kernel reports them for this process."""
    found = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
                    found[key.lower()] = int(value.strip(), 16)
                elif key == "NoNewPrivs":
                    found["no_new_privs"] = value.strip() == "1"
    except (OSError, ValueError):
        pass
    return found


def _listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        return [f"<{path} unreadable: {exc.strerror}>"]


def _user_namespace_blocked():
    """True if a user namespace cannot be made here (tried in a single-threaded fork, as unshare needs)."""
    import ctypes

    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            os._exit(0 if libc.unshare(0x10000000) == 0 else 1)  # CLONE_NEWUSER
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 1


def _writable_mounts():
    """[mount point, type, mount options, superblock options] of every read-write mount this process sees."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 6 and len(tail) >= 3 and "rw" in fields[5].split(","):
            point = fields[4].encode().decode("unicode_escape")
            found.append([point, tail[0], fields[5], tail[2]])
    return found


def _visible(path, allowed):
    try:
        if os.path.isdir(path):
            return bool(set(os.listdir(path)) - set(allowed))
        with open(path, "rb") as f:
            return bool(f.read(1))
    except OSError:
        return False
