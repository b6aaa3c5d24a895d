"""Execution backends (local rank processes, SLURM batch jobs) behind one interface: ``base.Backend``."""
