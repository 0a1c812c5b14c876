"""Design coding: kinds, labels, reference levels, standardisation and errors."""

import numpy as np
import pandas as pd
import pytest

from bayes_sarcoma import RegistryError
from bayes_sarcoma.data.design import Design


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "pid": [f"p{i}" for i in range(n)],
            "age": rng.normal(60, 10, n),
            "expert_center": rng.integers(0, 2, n).astype(bool),
            "margin": rng.choice(["R0", "R1", "R2", "Rx"], n),
            "grade": rng.choice([1, 2, 3], n),
            "stage": rng.choice(["I", "II", "III"], n),
            "dose": rng.integers(0, 2, n),
        }
    )


def test_kinds_labels_and_registry_reference_levels(table):
    design = Design.learn(table, ["expert_center", "age", "grade", "margin", "stage", "dose"])
    kinds = {t.name: t.kind for t in design.terms}
    assert kinds == {
        "expert_center": "binary",
        "age": "continuous",
        "grade": "categorical",
        "margin": "categorical",
        "stage": "categorical",
        "dose": "binary",
    }
    assert design.labels == [
        "expert_center",
        "age",
        "grade[2]",
        "grade[3]",
        "margin[R1]",
        "margin[R2]",
        "margin[Rx]",
        "stage[II]",
        "stage[III]",
        "dose",
    ]


def test_user_reference_level(table):
    design = Design.learn(table, ["margin", "stage"], reference={"margin": "Rx", "stage": "II"})
    assert design.labels == ["margin[R0]", "margin[R1]", "margin[R2]", "stage[I]", "stage[III]"]


def test_raw_matrix_dummies_and_standardised_matrix(table):
    design = Design.learn(table, ["age", "margin"])
    raw = design.raw_matrix(table)
    np.testing.assert_array_equal(raw[:, 0], table.age)
    np.testing.assert_array_equal(raw[:, 1], (table.margin == "R1").astype(float))
    std = design.matrix(table)
    np.testing.assert_allclose(std[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(std[:, 0].std(), 1, rtol=1e-12)
    np.testing.assert_allclose(std.mean(axis=0), 0, atol=1e-12)  # every column centred
    # Coefficients on the sampling scale map back: beta_user = beta_std / scale.
    beta_std = np.array([0.3, -0.2, 0.1, 0.4])
    eta_std = std @ beta_std
    beta_user = beta_std / design.scale
    eta_user = raw @ beta_user - beta_user @ design.mean
    np.testing.assert_allclose(eta_std, eta_user, atol=1e-12)


def test_round_trip_through_a_dict(table):
    design = Design.learn(table, ["age", "grade", "stage", "expert_center"])
    again = Design.from_dict(design.to_dict())
    np.testing.assert_array_equal(again.raw_matrix(table), design.raw_matrix(table))
    assert again.labels == design.labels


def test_missing_values_name_the_rows(table):
    table.loc[4, "age"] = np.nan
    with pytest.raises(RegistryError, match=r"column 'age'.*no missing values.*p4"):
        Design.learn(table, ["age"], id_column="pid")


def test_unknown_category_at_prediction_names_the_rows(table):
    design = Design.learn(table, ["margin"], id_column="pid")
    new = table.head(3).copy()
    new.loc[1, "margin"] = "R3"
    with pytest.raises(RegistryError, match=r"margin.*'R3'.*p1"):
        design.raw_matrix(new)


def test_unknown_registry_category_is_an_error_with_a_hint(table):
    table.loc[0, "margin"] = "r0 "
    with pytest.raises(RegistryError, match=r"'r0 '.*levels="):
        Design.learn(table, ["margin"], id_column="pid")


def test_constant_and_collinear_terms_are_errors(table):
    table["const"] = 3.0
    with pytest.raises(RegistryError, match="constant"):
        Design.learn(table, ["age", "const"])
    table["age_months"] = table["age"] * 12
    with pytest.raises(RegistryError, match=r"age, age_months.*collinear"):
        Design.learn(table, ["age", "age_months"])


def test_missing_and_duplicated_terms(table):
    with pytest.raises(RegistryError, match=r"'tumour_size'.*did you mean"):
        Design.learn(table.rename(columns={"age": "tumour_size_cm"}), ["tumour_size"])
    with pytest.raises(RegistryError, match="more than once"):
        Design.learn(table, ["age", "age"])
