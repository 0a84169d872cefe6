"""rpt-transfer: measure whether reinforcement post-training gains transfer to other reasoning domains."""

from rpt_transfer.errors import RptError

__version__ = "0.1.0"

__all__ = ["RptError", "__version__"]
