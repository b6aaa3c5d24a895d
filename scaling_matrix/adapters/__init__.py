"""Every contact with the outside world (processes, SLURM, databases) lives here."""
