"""The one error type users see: a message that says what was received and what to change."""


class FashionGANError(ValueError):
    """Bad input (file, flag, config, checkpoint). The CLI prints it as one line and exits 2."""
