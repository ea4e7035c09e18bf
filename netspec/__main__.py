"""`python -m netspec ...` runs the command line."""

from netspec.cli import main

main()
