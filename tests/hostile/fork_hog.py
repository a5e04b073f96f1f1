"""Hostile: splits a memory hog over forked processes, each under the per-process address-space limit
(6 x 300 MB against a 1 GB sandbox). Must get: the sandbox's memory bounded in total (the kernel kills hogs
at the sandbox's limit), the grader untouched, the run goes on."""
import os

import numpy as np


def hog(processes=6, mb=300):
    """-> {pid: exit code}: each child allocates and touches `mb` MB, says so, and waits to be ended."""
    children = {}
    for _ in range(processes):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            block = np.ones(mb * 2**20 // 8)  # touched: resident, not just reserved
            os.write(ready_w, b"1")
            os.pause()
            os._exit(int(block[0]))
        os.close(ready_w)
        children[pid] = ready_r
    held = {pid: os.read(fd, 1) == b"1" for pid, fd in children.items()}  # b"" if killed before it held
    ended = {}
    for pid in children:
        os.kill(pid, 15)
        ended[pid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return {"held": sum(held.values()), "killed": sum(code == -9 for code in ended.values())}


outcome = hog()


def after():
    return "still graded"
