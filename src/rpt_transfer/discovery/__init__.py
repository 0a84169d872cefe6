"""Finding newly released RPT models on the Hugging Face Hub, pairing them with their bases.

`rpt-transfer discover` (docs/discovery.md): `config` (what to follow), `hub` (the Hub API with retries),
`signals`, `lineage` and `rl_domains` (pure classification), `decide` (one model, one decision with its
evidence), `study` (accepted models as an observational study), `registry` (decisions in the store) and
`discover` (the run).
"""

from rpt_transfer.discovery.config import DiscoveryConfig, load_config
from rpt_transfer.discovery.discover import Found, find_new, record
from rpt_transfer.discovery.registry import Decision, load, model_sizes

__all__ = ["Decision", "DiscoveryConfig", "Found", "find_new", "load", "load_config", "model_sizes", "record"]
