"""The fake OpenRLHF CLI modules."""
