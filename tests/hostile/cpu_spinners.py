"""Hostile: processes that each lead a session of their own (escaping the scheduler's per-session fairness) and
spin, to take every CPU of the machine from the submissions graded beside it. Without a CPU limit, 60 of them made
an honest submission graded at the same time 17 times slower; the sandbox's cgroup gives all of them together one
CPU's time."""
import os
import resource
import time


def spin_for(seconds, processes):
    """Spin `processes` setsid() children for `seconds`; -> their CPU time and the wall time, in seconds."""
    start, pids = time.monotonic(), []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            os.setsid()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cpu": used.ru_utime + used.ru_stime, "wall": time.monotonic() - start}
