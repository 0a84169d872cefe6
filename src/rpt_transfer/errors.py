"""User-fixable errors. The CLI prints these on one line, exit 2 (75: transient); anything else is a bug."""

EXIT_TRANSIENT = 75
"""Exit code of a failure that may pass (BSD's EX_TEMPFAIL): Argo retries the pod for it."""


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


class TransientError(RptError):
    """A failure that may pass on its own: a server or the store did not answer after its own retries.

    The CLI exits 75 (EX_TEMPFAIL) for it, and Argo's retry strategy tries the pod again; a user error
    (exit 2) is never retried, since the same inputs would fail the same way.
    """


class TransientStoreError(StoreError, TransientError):
    """The store could not be reached (connection refused or reset, timeout) or answered 5xx or throttled."""


class TransientJobError(JobError, TransientError):
    """A job failed, committing nothing, because a server it needs failed in a way that may pass."""
