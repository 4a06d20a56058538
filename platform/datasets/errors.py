"""The one error a dataset source raises."""


class DatasetError(ValueError):
    """A dataset source that cannot be loaded; the message says what is wrong and where."""
