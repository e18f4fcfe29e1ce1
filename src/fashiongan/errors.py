"""The one error type users see: a message that says what was received and what to change."""


class FashionGANError(ValueError):
    """Bad input (file, flag, config, checkpoint). The CLI prints it as one line and exits 2."""


class DataNotFound(FashionGANError):
    """No Fashion-MNIST split on the search path (and no --data): evaluate can fall back on the
    evaluator's shipped reference statistics for the metrics they serve."""
