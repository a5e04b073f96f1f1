"""The sandbox child's own code: what runs beside the student's, in the same process (stdlib and numpy only).

The child runs `python -I /box/runner.py CONFIG_JSON`; the entry script imports this package from /box, where it
is bound read-only, as the top-level package `inside`. Its modules therefore import each other relatively and
never import `grader` (hidden from the child). The grader imports the same modules as `grader.sandbox.inside`
where it does in-process what the child does (kernel_box.py, kernel_state.py): one definition of each.
"""
