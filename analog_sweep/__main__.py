"""``python -m analog_sweep``: the same command line as the ``analog-sweep`` script."""

from analog_sweep.cli import main

main()
