"""Hostile: tries to become root in a user namespace of its own (the unshare syscall, `unshare -U`, and bwrap
itself). Must get: every attempt refused."""
import ctypes
import os
import subprocess



def unshare_in_a_fork():
    """True if unshare(CLONE_NEWUSER) worked (tried in a fork: it needs a single-threaded process; where the
    sandbox allows no second process, in this one)."""
    try:
        pid = os.fork()
    except OSError:
        return ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0
    if pid == 0:
        os._exit(0 if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0 else 1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


attempts = {"syscall": unshare_in_a_fork()}
for name, command in (("unshare -U", ["unshare", "-U", "--map-root-user", "id", "-u"]),
                      ("bwrap", ["bwrap", "--unshare-user", "--uid", "0", "--ro-bind", "/", "/", "id", "-u"])):
    try:
        done = subprocess.run(command, capture_output=True, timeout=20)
        attempts[name] = done.returncode == 0
    except OSError:
        attempts[name] = False
