"""Thin Prefect tasks over the pure core and the adapters in ``scaling_matrix``."""
