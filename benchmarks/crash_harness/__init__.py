"""Helpers of ``benchmarks/crash_resume.py``."""
