"""User-facing errors: each message names the file, field or backbone and says what to do."""


class TransferLabError(Exception):
    """Base of every error TransferLab reports to a person rather than a developer."""


class DataError(TransferLabError, ValueError):
    """The dataset as a whole cannot be used."""


class UnsafeArchive(DataError):
    """An archive was refused: an entry is absolute, climbs out with '..', is a link, or it is too large."""


class UnreadableImage(DataError):
    """One image cannot be used (skipped and listed, never fatal to a dataset)."""


class WeightsUnavailable(TransferLabError, RuntimeError):
    """No pretrained weights could be found; the message says how to provide them."""


class WeightsMismatch(TransferLabError, ValueError):
    """A weights file does not fit the architecture; the message names the keys."""


class RunBusy(TransferLabError, RuntimeError):
    """Another process is training the run (it holds the run's lock)."""


class NotResumable(TransferLabError, ValueError):
    """A run that cannot continue: it finished, or its last checkpoint does not load. The run is left as it was."""


class NotEnoughSpace(TransferLabError, OSError):
    """The disk cannot hold what the run will write; the message says how much is needed and where."""


def in_words(e: Exception) -> str:
    """An exception as one line a person can act on: an OS error's reason and file, else type and message."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror} ({e.filename})" if e.filename else e.strerror
    return str(e) if isinstance(e, TransferLabError) else f"{type(e).__name__}: {e}"
