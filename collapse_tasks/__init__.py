"""lm-eval task YAMLs `collapse_*` and the include-path helper."""
