"""User-fixable errors. The CLI prints these on one line and exits 2; anything else is a bug."""


class RptError(Exception):
    """A problem the user can fix: the message names the file or field, what was given, what is accepted."""


class SpecError(RptError):
    """The study spec is malformed or names something unknown; `problems` holds every one, one line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class UnknownBenchmark(RptError):
    """A benchmark or suite name that the registry does not know."""


class PlanError(RptError):
    """A plan file is unreadable, from another study, or lacks the requested job."""


class StoreError(RptError):
    """The store cannot be reached, read or written."""


class ManifestError(StoreError):
    """An object does not match its manifest (size or sha256), or a manifest is malformed."""


class WriteConflictError(StoreError):
    """Another writer committed the same job first."""


class JobError(RptError):
    """A job could not produce its output (too many failed items, missing inputs)."""


class SettingError(RptError):
    """An environment setting (e.g. RPT_CPUS) has a value that is not accepted."""


class TrackingError(RptError):
    """MLflow holds something that disagrees with the store and must not be papered over (an edited param)."""
