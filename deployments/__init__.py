"""Deployment definitions (``scaling-matrix/nightly``)."""
