"""RPT training: the spec's training models here; trainer backends load lazily (TRL, OpenRLHF are heavy)."""

from rpt_transfer.training.config import Algorithm, TrainData, TrainerName, TrainHyper, TrainSpec

__all__ = ["Algorithm", "TrainData", "TrainHyper", "TrainSpec", "TrainerName"]
