"""rpt-transfer: measure whether reinforcement post-training gains transfer to other reasoning domains."""

import os

from rpt_transfer.errors import RptError

# Offline by default: MLflow and the Hub client send usage telemetry unless told not to; users may opt in.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

__all__ = ["RptError", "__version__"]
