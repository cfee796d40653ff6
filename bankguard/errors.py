"""The one exception type the CLI turns into a single line and a non-zero exit."""


class BankguardError(Exception):
    """A problem the user can fix (bad path, busy port, bad input); no traceback."""
