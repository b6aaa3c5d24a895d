"""Prefect blocks: configuration and secrets only; each produces Prefect-free values."""
