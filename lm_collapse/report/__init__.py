"""Paper-ready reports of recursion runs: tables (Markdown, LaTeX, CSV), figures, samples."""

from .build import FORMATS, Report, build_report

__all__ = ["build_report", "Report", "FORMATS"]
