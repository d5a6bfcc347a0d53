"""Query parameters as psycopg takes them: ``execute(query, params)`` with ``%s`` placeholders and
a sequence, or ``%(name)s`` placeholders and a mapping; ``%%`` is a literal ``%``.

The placeholders become PostgreSQL's ``$1``, ``$2``, … in the core, on hark's own SQL lexer (so a
``%s`` inside quotes or a comment is text, where psycopg would take it for a placeholder), and
the values are bound to them by the core, never pasted into the SQL. Mistakes raise what psycopg
raises, with its messages: ``hark.SqlSyntaxError`` where psycopg raises ``ProgrammingError``,
``TypeError`` where it raises ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

from . import _hark
from .errors import SqlSyntaxError

Params = Union[Sequence[Any], Mapping[str, Any]]


def bind(query: str, params: Params) -> tuple[str, list[Any]]:
    """The query with ``$n`` placeholders and its values in ``$n`` order, checked against its
    placeholders as psycopg checks them."""
    sequence = _is_sequence(params)
    text, written, names = _hark.convert_pyformat(query)
    if sequence:
        assert isinstance(params, Sequence)
        if len(params) != written:
            raise SqlSyntaxError(f"the query has {written} placeholders but {len(params)} parameters were passed")
        if params and names is not None:
            raise TypeError("named placeholders require a mapping of parameters")
        return text, list(params)
    assert isinstance(params, Mapping)
    if params and written and names is None:
        raise TypeError("positional placeholders (%s) require a sequence of parameters")
    if not names:
        return text, []
    missing = sorted(n for n in names if n not in params)
    if missing:
        raise SqlSyntaxError(f"query parameter missing: {', '.join(missing)}")
    return text, [params[n] for n in names]


def _is_sequence(params: object) -> bool:
    t = type(params)
    if t is list or t is tuple:
        return True
    if t is dict:
        return False
    if isinstance(params, Sequence) and not isinstance(params, (bytes, str)):
        return True
    if isinstance(params, Mapping):
        return False
    raise TypeError(f"query parameters should be a sequence or a mapping, got {type(params).__qualname__}")
