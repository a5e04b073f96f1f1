"""Talking to the student's code: where their network lives (network.py) and how to call it."""
