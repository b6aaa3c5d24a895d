"""scaling-matrix: NeMo fine-tuning scaling benchmarks as Prefect 3 flows.

Layers (imports point down):
    config -> matrix -> render -> adapters (runner, launchers, store) -> parsing -> analysis -> report
The pure layers (config, matrix, render, parsing, analysis, report) never import prefect,
sqlalchemy or subprocess; ``tests/test_architecture.py`` enforces it.
"""

__version__ = "0.1.0"
