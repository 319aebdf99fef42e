"""User-facing errors.

A :class:`CellbenchError` is a problem with the user's input (a file, an option, a name). The CLI
prints its message as one line and exits with code 2, without a traceback. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CellbenchError(Exception):
    """A one-line, user-facing error: names the file/option/plugin and the problem."""

    exit_code = 2


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean: a, b?)"`` for close matches of *name*, or ``""`` when none."""
    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> CellbenchError:
    """The error for an unknown plugin/spec name, with close matches suggested."""
    choices = sorted(choices)
    hint = did_you_mean(name, choices)
    if not hint:
        shown = ", ".join(choices[:12]) + (" ..." if len(choices) > 12 else "")
        hint = f"; known: {shown}" if choices else ""
    return CellbenchError(f"unknown {kind} {name!r}{hint}")


def one_line(exc: BaseException, with_type: bool = True) -> str:
    """*exc* as one line (whitespace folded) for an ``error:``/``warning:`` line or a failed cell's
    record; ``with_type`` prefixes the exception's class name (``ValueError: ...``), which tells more
    than the message alone for errors that are not cellbench's own."""
    text = " ".join(str(exc).split())
    if not with_type:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
