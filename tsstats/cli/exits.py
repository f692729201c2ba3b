"""The command line's exit statuses, one home for each."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
