"""Hostile: tries to read the grader's reference solution, the grader's source and root's files. Must get:
nothing readable (all hidden), the imports fail."""
import os

leaked = []
for path in ("__REFERENCE__", "__GRADER__", "/root/.bash_history", "/etc/shadow", "__MNIST__"):
    try:
        with open(path, "rb") as f:
            if f.read(1):
                leaked.append(path)
    except OSError:
        pass
for folder in ("__PROJECT__", "/root"):
    try:
        listing = [name for name in os.listdir(folder) if name != ".pyenv"]
        if listing:
            leaked.append(folder)
    except OSError:
        pass
try:
    import reference  # noqa: F401

    leaked.append("import reference")
except ImportError:
    pass
try:
    import grader.grading  # noqa: F401  (`import grader` alone finds the sandbox's check() stand-in)

    leaked.append("import grader")
except ImportError:
    pass
