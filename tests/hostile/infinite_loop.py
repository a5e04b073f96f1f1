"""Hostile: a top-level infinite loop. Must get: that statement times out; everything else still runs."""
x = 1
while True:
    x += 1


def after():
    return "still graded"
