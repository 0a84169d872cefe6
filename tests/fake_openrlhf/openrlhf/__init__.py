"""A test double of OpenRLHF 0.11's `train_ppo_ray` entry point (`openrlhf.cli.train_ppo_ray`).

Tests put `tests/fake_openrlhf` first on PYTHONPATH of a train job. The double parses the job's argv with
the installed OpenRLHF's own parser and checks (`real_parser`), then plays OpenRLHF's side of every
contract the backend relies on; see `cli/train_ppo_ray.py`.
"""
