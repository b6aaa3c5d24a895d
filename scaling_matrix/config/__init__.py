"""Validated configuration: models, cells, matrices and cluster profiles."""

from scaling_matrix.config.models import (
    CellSpec, ContainerSettings, MatrixSpec, ModelSpec, ProfileSpec, SlurmSettings,
)

__all__ = ["CellSpec", "ContainerSettings", "MatrixSpec", "ModelSpec", "ProfileSpec", "SlurmSettings"]
