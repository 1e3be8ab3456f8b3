"""The ``gateway`` command line: argument parsing (``main``) and the commands behind each
subcommand (``commands``)."""
