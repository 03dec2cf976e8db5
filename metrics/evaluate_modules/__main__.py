"""``python -m metrics.evaluate_modules``: the path of every shipped ``evaluate`` module."""
from . import NAMES, path

for name in NAMES:
    print(f"{name}\t{path(name)}")
