"""Placeholder for `deepspeed`, so that the train job's check of the trainer's packages (importlib's find_spec,
which imports nothing) passes in tests; the fake OpenRLHF never needs it, and importing it fails loudly."""

raise ImportError("tests/fake_openrlhf/deepspeed is a placeholder: the real package is not installed here")
