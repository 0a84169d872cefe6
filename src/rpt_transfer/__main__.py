"""`python -m rpt_transfer` is the `rpt-transfer` command."""

from rpt_transfer.cli import main

main()
