"""Stored jobs: the job folder layout, its lock, and the jobs API that reads it."""
