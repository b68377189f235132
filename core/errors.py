"""User-facing errors.

Anything a user can cause (a bad path, a wrong model file, no network) is raised as a
``TransferLabError`` with a message meant to be shown as is: the CLI prints it on one line and
exits non-zero, the GUI puts it in a dialog. Everything else is a bug and keeps its traceback.
"""


class TransferLabError(Exception):
    """An error whose message is written for the user."""


class StopTraining(Exception):
    """Raised inside the training loop to end a run early (user stop, NaN loss)."""
