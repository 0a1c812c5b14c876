"""Design matrices: model terms, dummy coding, standardisation and term labels.

A :class:`Design` is learnt once from the data a model is fitted on (levels, reference
levels, means and scales) and then applied unchanged to any new data (predictions), so
that a term always means the same thing.

Coding, by the kind of each term:

- ``binary`` (bool, or numbers that are all 0/1): one column, label = the column name,
  e.g. ``expert_center``.
- ``continuous`` (other numbers): one column, label = the column name. Standardised
  internally (``(x - mean) / sd``) for sampling; coefficients are reported per unit of the
  user's column (per year of age, per cm).
- ``categorical`` (strings, categories, or a registry column with known levels such as
  ``grade``): treatment (dummy) coding against a reference level, labels like
  ``margin[R1]``. The reference is the first level (the registry's documented first level,
  e.g. ``R0``, or the first sorted value) unless the user chooses one.

Every column is also centred for sampling (brms and rstanarm do the same): centring
decorrelates the intercept from the coefficients without changing the coefficients. We
code this by hand rather than with formulaic because the contract needs these exact
labels, errors that name the offending patients, and a frozen, serialisable coding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bayes_sarcoma.data import schema
from bayes_sarcoma.data.errors import Problem, RegistryError, problem_where, raise_if

KINDS = ("binary", "continuous", "categorical")
#: Continuous values beyond this magnitude are refused (their square would overflow).
MAX_ABS_VALUE = 1e100
#: A text column of numbers with more distinct values than this is refused as a category.
MAX_NUMERIC_TEXT_LEVELS = 10


@dataclass(frozen=True)
class Term:
    """One model term (one data column) and how it is coded.

    Attributes
    ----------
    name : str
        The data column.
    kind : {"binary", "continuous", "categorical"}
        How the column is coded.
    levels : tuple
        Categorical levels in order (reference first); empty otherwise.
    mean, scale : tuple of float
        Per design column: what is subtracted, and what it is divided by, for sampling.
    """

    name: str
    kind: str
    levels: tuple = ()
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()

    @property
    def reference(self):
        """The reference level of a categorical term (None otherwise)."""
        return self.levels[0] if self.kind == "categorical" else None

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels of this term's design columns."""
        if self.kind == "categorical":
            return tuple(f"{self.name}[{level}]" for level in self.levels[1:])
        return (self.name,)

    def raw_columns(self, values: pd.Series) -> np.ndarray:
        """Return the uncentred, unscaled design columns (n, k) for ``values``."""
        if self.kind == "categorical":
            codes = level_codes(values, self.levels)
            return (codes[:, None] == np.arange(1, len(self.levels))[None, :]).astype(float)
        return values.to_numpy(dtype=float)[:, None]


@dataclass(frozen=True)
class Design:
    """A frozen coding of model terms, learnt from the fitting data.

    Use :meth:`Design.learn` to build one and :meth:`matrix` to apply it.
    """

    terms: tuple[Term, ...]
    id_column: str | None = None

    @property
    def labels(self) -> list[str]:
        """Term labels of the design columns, in order (the ``term`` coordinate)."""
        return [label for term in self.terms for label in term.labels]

    @property
    def columns(self) -> list[str]:
        """The data columns the design reads."""
        return [term.name for term in self.terms]

    @property
    def mean(self) -> np.ndarray:
        """What is subtracted from each design column for sampling."""
        return np.array([m for term in self.terms for m in term.mean], dtype=float)

    @property
    def scale(self) -> np.ndarray:
        """What each centred design column is divided by for sampling (1 for dummies)."""
        return np.array([s for term in self.terms for s in term.scale], dtype=float)

    def term(self, name: str) -> Term:
        """Return the term reading column ``name``."""
        for term in self.terms:
            if term.name == name:
                return term
        raise KeyError(f"no term {name!r} in the design; terms are {self.columns}")

    @classmethod
    def learn(
        cls,
        data: pd.DataFrame,
        terms: Sequence[str],
        *,
        categorical: Sequence[str] = (),
        reference: Mapping[str, object] | None = None,
        levels: Mapping[str, Sequence] | None = None,
        id_column: str | None = None,
        registry: bool = True,
    ) -> Design:
        """Learn the coding of ``terms`` from ``data``.

        Parameters
        ----------
        data : pandas.DataFrame
            The fitting data.
        terms : sequence of str
            Columns to use as covariates.
        categorical : sequence of str, optional
            Numeric columns to treat as categorical (registry columns such as ``grade``
            already are).
        reference : mapping, optional
            Reference level per categorical term, e.g. ``{"margin": "R1"}``.
        levels : mapping, optional
            Level order per categorical term (default: the registry's documented order for
            registry columns, sorted values otherwise). Levels absent from the data are
            dropped (a dummy column of zeros would be unidentified).
        id_column : str, optional
            Column whose values name rows in error messages.
        registry : bool, default True
            Hold columns named as the registry's (``sex``, ``grade``, ``margin`` ...) to the
            registry's documented levels. False for a user's own table: a 0/1 ``sex`` is then
            a binary term, as the user coded it.

        Returns
        -------
        Design

        Raises
        ------
        RegistryError
            Missing columns or values, a constant or perfectly collinear term, or an
            unknown reference level.
        """
        reference = dict(reference or {})
        levels = dict(levels or {})
        terms = list(terms)
        dupes = sorted({t for t in terms if terms.count(t) > 1})
        missing = [t for t in terms if t not in data.columns]
        problems = [Problem(t, "a term is listed more than once") for t in dupes]
        problems += [
            Problem(t, "a model term must be a column of the data", hint=_did_you_mean(t, data))
            for t in missing
        ]
        raise_if(problems)
        raise_if(missing_value_problems(data, terms, id_column))
        built = [
            _learn_term(
                data,
                name,
                name in categorical,
                reference,
                levels,
                id_column,
                schema.CATEGORICAL_COVARIATES.get(name) if registry else None,
            )
            for name in terms
        ]
        unknown_refs = set(reference) - {t.name for t in built if t.kind == "categorical"}
        raise_if(
            Problem(name, "a reference level was given for a term that is not categorical")
            for name in sorted(unknown_refs)
        )
        design = cls(tuple(built), id_column)
        design._check_rank(data)
        return design

    def raw_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """Return the design matrix on the user's scale (dummies 0/1, raw numbers)."""
        raise_if(missing_value_problems(data, self.columns, self.id_column))
        problems = [p for t in self.terms if (p := _value_problem(data, t, self.id_column))]
        raise_if(problems)
        if not self.terms:
            return np.zeros((len(data), 0))
        return np.hstack([term.raw_columns(data[term.name]) for term in self.terms])

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        """Return the centred and scaled design matrix used for sampling."""
        return (self.raw_matrix(data) - self.mean) / self.scale

    def to_dict(self) -> dict:
        """Return a JSON-serialisable description (see :meth:`from_dict`)."""
        return {
            "terms": [{**asdict(t), "levels": [_plain(v) for v in t.levels]} for t in self.terms],
            "id_column": self.id_column,
        }

    @classmethod
    def from_dict(cls, spec: Mapping) -> Design:
        """Rebuild a design written by :meth:`to_dict`."""
        terms = tuple(
            Term(
                name=t["name"],
                kind=t["kind"],
                levels=tuple(t["levels"]),
                mean=tuple(t["mean"]),
                scale=tuple(t["scale"]),
            )
            for t in spec["terms"]
        )
        return cls(terms, spec.get("id_column"))

    def _check_rank(self, data: pd.DataFrame) -> None:
        x = self.matrix(data)
        if x.shape[1] == 0:
            return
        full = np.column_stack([np.ones(len(x)), x])
        rank = np.linalg.matrix_rank(full)
        if rank == full.shape[1]:
            return
        # Name the columns that a least-squares fit on the others reproduces exactly.
        labels = self.labels
        culprits = []
        for j in range(x.shape[1]):
            others = np.delete(full, j + 1, axis=1)
            coef, *_ = np.linalg.lstsq(others, x[:, j], rcond=None)
            if np.allclose(others @ coef, x[:, j], atol=1e-8):
                culprits.append(labels[j])
        raise RegistryError(
            Problem(
                ", ".join(culprits) or ", ".join(labels),
                "the model terms are perfectly collinear (one is a combination of the others "
                "and the intercept), so their effects cannot be told apart",
                hint="drop one of them from `terms`",
            )
        )


def level_codes(values: pd.Series, levels: Sequence) -> np.ndarray:
    """Return the index of each value in ``levels`` (-1 for a value not in it)."""
    index = pd.Index(list(levels))
    return index.get_indexer(pd.Index(values.to_numpy(dtype=object)))


def missing_value_problems(
    data: pd.DataFrame, columns: Sequence[str], id_column: str | None
) -> list[Problem]:
    """Return a problem for each column with missing (NaN, None, NaT) values."""
    problems = []
    for col in columns:
        if col in data.columns:
            problem = problem_where(
                data,
                col,
                data[col].isna().to_numpy(),
                "a column the model uses must have no missing values (rows are never dropped "
                "silently)",
                id_column=id_column,
                hint="impute, recode (e.g. margin 'Rx' for unknown) or drop these rows yourself",
            )
            if problem:
                problems.append(problem)
    return problems


def _learn_term(data, name, force_categorical, reference, levels, id_column, known) -> Term:
    values = data[name]
    is_bool = pd.api.types.is_bool_dtype(values)
    is_numeric = pd.api.types.is_numeric_dtype(values) and not is_bool
    if known is not None or force_categorical or not (is_bool or is_numeric):
        _refuse_numbers_as_text(data, name, force_categorical, id_column)
        return _learn_categorical(data, name, known, reference, levels, id_column)
    if is_numeric:
        x = values.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            huge = np.abs(x) > MAX_ABS_VALUE
        raise_if(
            [
                problem_where(
                    data,
                    name,
                    ~np.isfinite(x),
                    "numbers must be finite (no inf)",
                    id_column=id_column,
                ),
                problem_where(
                    data,
                    name,
                    np.isfinite(x) & huge,
                    f"numbers must be of a plausible magnitude (|x| <= {MAX_ABS_VALUE:g})",
                    id_column=id_column,
                    hint="check the unit or a typo",
                ),
            ]
        )
        if np.isin(x, (0.0, 1.0)).all() and len(np.unique(x)) == 2:
            is_bool = True
        else:
            sd = float(np.std(x))
            if sd == 0:
                raise RegistryError(
                    Problem(name, "a continuous term must vary (it is constant)", hint="drop it")
                )
            return Term(name, "continuous", (), (float(np.mean(x)),), (sd,))
    x = values.to_numpy(dtype=float)
    if len(np.unique(x)) < 2:
        raise RegistryError(
            Problem(name, "a binary term must take both values (it is constant)", hint="drop it")
        )
    return Term(name, "binary", (), (float(np.mean(x)),), (1.0,))


def _refuse_numbers_as_text(data, name, force_categorical, id_column) -> None:
    """Refuse a text column of many distinct numbers: it is numbers stored as text.

    A text column whose values all read as numbers, with more than
    ``MAX_NUMERIC_TEXT_LEVELS`` distinct values, would become one dummy per value. Codes
    such as '1', '2', '3' (few levels) stay categorical, as does any column the user
    declared ``categorical``.
    """
    values = data[name]
    if force_categorical or not (
        pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
    ):
        return
    parsed = pd.to_numeric(values, errors="coerce")
    if parsed.notna().all() and values.nunique() > MAX_NUMERIC_TEXT_LEVELS:
        raise RegistryError(
            Problem(
                name,
                f"the values are numbers stored as text ({values.nunique()} distinct values), "
                "which would be coded as one category per value",
                hint=f"convert with df[{name!r}] = pd.to_numeric(df[{name!r}]), or pass "
                f"categorical=[{name!r}] if they really are category codes",
            )
        )


def _learn_categorical(data, name, known, reference, levels, id_column) -> Term:
    values = data[name]
    observed = pd.unique(values.to_numpy(dtype=object))
    if name in levels:
        order = list(levels[name])
    elif known is not None:
        order = list(known)
    else:
        order = sorted(observed, key=lambda v: (str(type(v)), v))
    codes = level_codes(values, order)
    raise_if(
        [
            problem_where(
                data,
                name,
                codes < 0,
                f"values must be one of {', '.join(map(repr, order))}; found "
                + ", ".join(repr(v) for v in pd.unique(values[codes < 0].to_numpy(dtype=object))),
                id_column=id_column,
                hint=f"recode them, or pass levels={{{name!r}: [...]}} to use your own coding",
            )
        ]
    )
    present = [lvl for lvl in order if lvl in set(observed)]
    if name in reference:
        ref = reference[name]
        if ref not in present:
            raise RegistryError(
                Problem(
                    name,
                    f"reference level {ref!r} is not among the levels in the data "
                    f"({', '.join(map(repr, present))})",
                )
            )
        present = [ref] + [lvl for lvl in present if lvl != ref]
    if len(present) < 2:
        raise RegistryError(
            Problem(
                name, "a categorical term needs at least two levels in the data", hint="drop it"
            )
        )
    term = Term(name, "categorical", tuple(present))
    dummies = term.raw_columns(values)
    k = dummies.shape[1]
    return Term(name, "categorical", tuple(present), tuple(dummies.mean(axis=0)), (1.0,) * k)


def _value_problem(data: pd.DataFrame, term: Term, id_column: str | None) -> Problem | None:
    if term.name not in data.columns:
        return Problem(term.name, "a model term must be a column of the data")
    values = data[term.name]
    if term.kind == "categorical":
        bad = level_codes(values, term.levels) < 0
        found = ", ".join(repr(v) for v in pd.unique(values[bad].to_numpy(dtype=object)))
        return problem_where(
            data,
            term.name,
            bad,
            f"values must be levels the model was fitted on ({', '.join(map(repr, term.levels))});"
            f" found {found}",
            id_column=id_column,
        )
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        return Problem(term.name, f"a {term.kind} term must be numeric or bool, not {values.dtype}")
    x = values.to_numpy(dtype=float)
    if term.kind == "binary":
        return problem_where(
            data,
            term.name,
            ~np.isin(x, (0.0, 1.0)),
            "values must be 0/1 or bool",
            id_column=id_column,
        )
    return problem_where(
        data, term.name, ~np.isfinite(x), "numbers must be finite", id_column=id_column
    )


def _did_you_mean(name: str, data: pd.DataFrame) -> str:
    import difflib

    close = difflib.get_close_matches(name, [str(c) for c in data.columns], n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def _plain(value):
    """Return a JSON-friendly Python scalar."""
    return value.item() if isinstance(value, np.generic) else value
