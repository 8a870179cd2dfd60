"""Streamlit driven from a plain script (`python benchmarks/x.py`), not from `streamlit run`.

AppTest's own session-state writes (`AppTest.__init__` stores its testing key, and
`at.session_state[key] = value` between runs) happen on the main thread, outside any script
run. Streamlit's `SessionState.__setitem__` asks for the ScriptRunContext there without
suppressing the warning, so every such write logs "missing ScriptRunContext! This warning can
be ignored when running in bare mode." Running bare is exactly what a benchmark does, so
`quiet_streamlit()` drops that one message; every other Streamlit log line still shows.
"""

from __future__ import annotations

import logging

# The logger Streamlit uses for the message (streamlit/runtime/scriptrunner_utils/).
CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class _NoBareModeWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "missing ScriptRunContext" not in record.getMessage()


_FILTER = _NoBareModeWarning()


def quiet_streamlit() -> None:
    """Drop Streamlit's bare-mode "missing ScriptRunContext" warning in this process.

    A filter rather than a log level: Streamlit resets its loggers' levels when it reads its
    config, but leaves their filters alone.
    """
    logger = logging.getLogger(CONTEXT_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
