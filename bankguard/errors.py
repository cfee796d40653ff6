"""The exception types the CLI turns into a single line and a non-zero exit."""


class BankguardError(Exception):
    """A problem the user can fix (bad path, busy port, bad input); no traceback."""

    exit_code = 1


class UsageMistake(BankguardError):
    """A wrong option value or setting: exit code 2, like a command-line usage error."""

    exit_code = 2
