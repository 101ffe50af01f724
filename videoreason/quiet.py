"""Silence library output a videoreason user cannot act on (advertisements, first-run notices, fallbacks we chose).

Called once by the ``videoreason`` console script; the library itself changes no global logging or warning state.
"""

from __future__ import annotations

import logging
import warnings

# (logger, message prefix) pairs dropped from the console
_DROPPED_LOG_MESSAGES = (
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip: For seamless cloud logging"),  # litlogger advertisement
    ("lightning.pytorch.loggers.mlflow", "Experiment with name"),  # "... not found. Creating it." on every new store
    # CPU 4-bit kernels from the `kernels` hub package: never used here (LLM.int8 and 8-bit AdamW only)
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward"),
)
_QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")  # "Creating initial MLflow database tables"
_IGNORED_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)  # Lightning internals on newer torch


class _DropPrefixes(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def silence_unactionable_output() -> None:
    """Install the filters above (idempotent)."""
    by_logger: dict[str, tuple[str, ...]] = {}
    for name, prefix in _DROPPED_LOG_MESSAGES:
        by_logger[name] = (*by_logger.get(name, ()), prefix)
    for name, prefixes in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropPrefixes) for f in logger.filters):
            logger.addFilter(_DropPrefixes(prefixes))
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in _IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
