"""The bench stage: measure artifacts on the target CPU (run.py) and write, track and compare reports (report.py).

Runs with the base install; a training checkpoint as the reference needs the `train` extra.
"""
