"""``scaling-matrix/nightly``: the matrix flow on a nightly cron, with default parameters.

Serve it (needs a persistent API, see README "Nightly deployment")::

    prefect server start &                       # once; UI at http://127.0.0.1:4200
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m deployments.nightly                # serves the deployment (blocks)
    prefect deployment run scaling-matrix/nightly

or with a work pool and a process worker: ``prefect --no-prompt deploy --all`` (``prefect.yaml``)
then ``prefect worker start --pool local-procs``.

``--profile block:NAME`` runs the nightly on a saved SlurmCluster block; ``--preflight`` makes every
night ``sbatch --test-only`` all its jobs first (as ``slurm.preflight: true`` in the profile does).
"""

from __future__ import annotations

import argparse
import os

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.matrix import scaling_matrix

DEPLOYMENT_NAME = "nightly"
NIGHTLY_CRON = "0 2 * * *"


def nightly_deployment(matrix: str = "smoke", profile: str = "local", cron: str = NIGHTLY_CRON,
                       timezone: str = "UTC", preflight: bool | None = None) -> RunnerDeployment:
    """Return the ``scaling-matrix/nightly`` deployment with its cron schedule and parameters
    (``profile`` may be ``block:NAME``; ``preflight`` True requires ``sbatch --test-only`` of every job)."""
    parameters: dict[str, object] = {"matrix": matrix, "profile": profile}
    if preflight is not None:
        parameters["preflight"] = preflight
    return scaling_matrix.to_deployment(
        name=DEPLOYMENT_NAME,
        schedule=Cron(cron, timezone=timezone),
        parameters=parameters,
        description=f"Nightly scaling matrix '{matrix}' on profile '{profile}'.",
        tags=["scaling-matrix", "nightly"],
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the nightly deployment until interrupted (SIGTERM pauses its schedule)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default=os.environ.get("SCALING_NIGHTLY_MATRIX", "smoke"))
    parser.add_argument("--profile", default=os.environ.get("SCALING_NIGHTLY_PROFILE", "local"))
    parser.add_argument("--cron", default=NIGHTLY_CRON)
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--preflight", action=argparse.BooleanOptionalAction, default=None,
                        help="sbatch --test-only every job before submitting any (default: the profile's setting)")
    args = parser.parse_args(argv)
    serve(nightly_deployment(args.matrix, args.profile, args.cron, args.timezone, args.preflight))


if __name__ == "__main__":
    main()
