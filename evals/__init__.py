"""Retrieval-accuracy evals: `python -m evals [--set xquad|drcd|cmrc|seed]` (see evals/README.md)."""
