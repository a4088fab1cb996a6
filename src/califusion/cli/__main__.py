"""`python -m califusion.cli` is the `califusion` command."""

from califusion.cli.main import main

main()
