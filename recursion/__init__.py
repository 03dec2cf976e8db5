"""The recursion driver: train -> generate -> select -> retrain."""
