"""One module per ``deltaprop`` subcommand (see :mod:`deltaprop.cli`)."""
