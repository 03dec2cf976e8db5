"""lm-collapse: measure model collapse and mode collapse with lm-evaluation-harness."""

__version__ = "0.1.0"
