"""Hostile: writes fake result files where the grader keeps reports, prints a fake Gradescope result.
Must get: every write outside the scratch dir fails; the reports dir is unchanged; printing changes nothing."""
import json
import os

REPORTS = "__REPORTS__"
FAKE = json.dumps({"score": 100.0, "tests": [{"name": "all", "score": 100.0, "max_score": 100.0}]})
print(FAKE)
written = []
for path in (os.path.join(REPORTS, "results.json"), os.path.join(REPORTS, "kv2154.json"),
             "/autograder/results/results.json", "../results.json", "/tmp/../results.json",
             "/work/main/reports/results.json"):
    try:
        with open(path, "w") as f:
            f.write(FAKE)
        written.append(path)
    except OSError:
        pass
with open("results.json", "w") as f:  # its own scratch dir: allowed, and meaningless
    f.write(FAKE)


def after():
    return "still graded"
