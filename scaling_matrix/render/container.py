"""Container wrappers around the workload argv: singularity/apptainer exec, pyxis, or none."""

from __future__ import annotations

from scaling_matrix.config.models import ContainerSettings
from scaling_matrix.errors import RenderError


def container_argv(container: ContainerSettings, argv: list[str], gpu: bool = True) -> list[str]:
    """Return ``argv`` wrapped for ``container`` (pyxis wraps nothing: see :func:`srun_options`).

    Note:
        Singularity/Apptainer pass the host environment through by default, so secrets such as
        ``HF_TOKEN`` reach the container from the job's environment and never appear in the script.
    """
    if container.runtime in ("none", "pyxis"):
        return list(argv)
    if not container.image:
        raise RenderError(f"container.runtime '{container.runtime}' needs container.image "
                          "(path to a .sif or a docker:// / oras:// reference)")
    wrapper = [container.runtime, "exec"]
    if gpu:
        wrapper.append("--nv")
    for bind in container.binds:
        wrapper += ["-B", bind]
    return [*wrapper, container.image, *argv]


def srun_options(container: ContainerSettings) -> list[str]:
    """Return the srun options a runtime needs (pyxis: --container-image/--container-mounts)."""
    if container.runtime != "pyxis":
        return []
    if not container.image:
        raise RenderError("container.runtime 'pyxis' needs container.image (e.g. nvcr.io#nvidia/nemo:25.07)")
    opts = [f"--container-image={container.image}"]
    if container.binds:
        opts.append("--container-mounts=" + ",".join(container.binds))
    if container.env_passthrough:
        opts.append("--container-env=" + ",".join(container.env_passthrough))
    return opts
