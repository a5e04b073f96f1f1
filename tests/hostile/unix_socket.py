"""Hostile: connects to a service outside the sandbox through a unix socket at a path and an abstract one.
Must get: neither reachable."""
import socket

reached = []
for address in ("__SOCKET__", "\0__ABSTRACT__"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(address)
        reached.append(address.replace("\0", "@"))
    except OSError:
        pass
    finally:
        s.close()
