"""User-facing errors: problems the user can fix, reported as one clear message without a traceback."""


class UserError(Exception):
    """A bad config, a missing file, an invalid argument. The message names the field and the fix."""
