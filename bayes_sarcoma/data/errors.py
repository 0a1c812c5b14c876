"""Errors that name the column, the offending rows and the rule that was broken.

A registry problem is reported as a :class:`Problem` (one column, one rule, the ids of
the rows that break it); a :class:`RegistryError` carries every problem found, so a
user fixes a table in one pass instead of one error at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: How many offending row ids a message lists before it says "and N more".
MAX_IDS_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One broken rule: the column, the rule in words, and the offending rows.

    Attributes
    ----------
    column : str
        The column (or comma-separated columns) the rule is about.
    rule : str
        The rule, in plain words, e.g. ``"age must be >= 15 years"``.
    rows : tuple
        Ids of the offending rows (the id column's values; the index when there is none).
    n_rows : int
        How many rows break the rule.
    hint : str
        Optional advice on how to fix it.
    """

    column: str
    rule: str
    rows: tuple = ()
    n_rows: int = 0
    hint: str = ""

    def __str__(self) -> str:
        where = ""
        if self.n_rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_IDS_SHOWN])
            more = self.n_rows - min(len(self.rows), MAX_IDS_SHOWN)
            plural = "row breaks" if self.n_rows == 1 else "rows break"
            where = f"{self.n_rows} {plural} it: {shown}" + (f" and {more} more" if more else "")
        text = f"column '{self.column}': {self.rule}"
        if where:
            text += f" ({where})"
        if self.hint:
            text += f". {self.hint}"
        return text


class DataWarning(UserWarning):
    """The data can be fitted, but something in them deserves the user's attention."""


class RegistryError(ValueError):
    """A table broke the data contract; ``problems`` lists every broken rule.

    The message names, for each problem, the column, the rule, the first few offending
    row ids and their count.
    """

    def __init__(self, problems: Problem | Sequence[Problem]):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("RegistryError needs at least one Problem")
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            lines = [f"{len(self.problems)} problems in the table:"]
            lines += [f"  - {p}" for p in self.problems]
            message = "\n".join(lines)
        super().__init__(message)

    @property
    def columns(self) -> list[str]:
        """The columns named by the problems, in order."""
        return [p.column for p in self.problems]


def row_ids(df: pd.DataFrame, mask: Iterable[bool] | np.ndarray, id_column: str | None) -> tuple:
    """Return the ids of the rows selected by ``mask`` (the index if there is no id column)."""
    mask = np.asarray(mask, dtype=bool)
    if id_column is not None and id_column in df.columns:
        ids = df[id_column].to_numpy()[mask]
    else:
        ids = df.index.to_numpy()[mask]
    return tuple(ids.tolist())


def problem_where(
    df: pd.DataFrame,
    column: str,
    mask: Iterable[bool] | np.ndarray,
    rule: str,
    *,
    id_column: str | None = "patient_id",
    hint: str = "",
) -> Problem | None:
    """Return a :class:`Problem` for the rows where ``mask`` is true, or None if there are none.

    Examples
    --------
    >>> df = pd.DataFrame({"patient_id": ["a", "b"], "age": [40, 12]})
    >>> str(problem_where(df, "age", df["age"] < 15, "age must be >= 15 years"))
    "column 'age': age must be >= 15 years (1 row breaks it: b)"
    """
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if n == 0:
        return None
    return Problem(column, rule, row_ids(df, mask, id_column), n, hint)


def raise_if(problems: Iterable[Problem | None]) -> None:
    """Raise a :class:`RegistryError` listing every problem that is not None."""
    found = [p for p in problems if p is not None]
    if found:
        raise RegistryError(found)


class TableFileError(ValueError):
    """A file could not be read as a table; the message names the file, the cause and the fix.

    Attributes
    ----------
    path : str
        The file, as the user gave it.
    cause : str
        What is wrong, e.g. ``"the file is empty (0 bytes)"``.
    fix : str
        What to do about it (may be empty).

    Examples
    --------
    >>> str(TableFileError("a.csv", "the file is empty (0 bytes)", "export the table again"))
    'a.csv: the file is empty (0 bytes); export the table again'
    """

    def __init__(self, path: object, cause: str, fix: str = ""):
        self.path, self.cause, self.fix = str(path), cause, fix
        super().__init__(f"{self.path}: {cause}" + (f"; {fix}" if fix else ""))


class TableReadNote(UserWarning):
    """A note on how a file was read, when it was not the plain default.

    The separator, the encoding, the decimal mark, the date format or the sheet found, so
    the user can check it.
    """
