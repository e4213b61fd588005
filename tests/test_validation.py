"""The shared checks of twinnet.validation: each refusal names the argument, the rule and the value."""

import numpy as np
import pytest

from twinnet import validation
from twinnet.validation import InvalidArgument


class _Sparse:  # what a scipy.sparse matrix looks like to the check
    def toarray(self):
        return np.ones((2, 2))


BAD_FEATURES = [
    ("sparse", _Sparse(), {}, r"X is a sparse matrix; pass a dense array \(X.toarray\(\)\)"),
    ("ragged", [[1.0, 2.0], [3.0]], {}, r"X must be an array \("),
    ("complex", np.ones((2, 2), dtype=complex), {}, "X must hold real numbers; got dtype complex128"),
    ("text", [["a", "b"]], {}, "X must hold real numbers; got dtype <U1"),
    ("1-D", np.ones(3), {}, r"X must be 2-D of shape \(m, n_features\), rows as examples; got X.shape=\(3,\) "
                            r"\(a single example\? use X.reshape\(1, -1\)\)"),
    ("3-D", np.ones((2, 2, 2)), {}, r"rows as examples; got X.shape=\(2, 2, 2\)\.$"),
    ("no examples", np.ones((0, 3)), {}, r"X is empty: X.shape=\(0, 3\); need at least one example and one feature"),
    ("no features", np.ones((3, 0)), {}, r"X is empty: X.shape=\(3, 0\)"),
    ("nan", np.array([[1.0, 2.0], [np.nan, 0.0]]), {}, r"X contains NaN or inf \(first at row 1, column 0\)\.$"),
    ("inf in float32", np.array([[1.0, 1e39]]), {"dtype": "float32"},
     r"X contains NaN or inf \(first at row 0, column 1, in float32\)"),
]


@pytest.mark.parametrize("X, kwargs, match", [case[1:] for case in BAD_FEATURES], ids=[c[0] for c in BAD_FEATURES])
def test_features_refuses_naming_the_argument(X, kwargs, match):
    with pytest.raises(InvalidArgument, match=match) as info:
        validation.features(X, **kwargs)
    assert info.value.argument == "X"


def test_features_keeps_the_array_and_its_dtype():
    X = np.arange(6, dtype=np.int32).reshape(3, 2)
    out = validation.features(X, dtype="float32")
    assert out is X and out.dtype == np.int32  # checked, not converted: the caller casts


def test_same_examples_says_both_shapes():
    with pytest.raises(InvalidArgument, match=r"^features and labels have different numbers of examples: "
                       r"features.shape=\(4, 2\), labels.shape=\(3,\)\.$"):
        validation.same_examples((4, 2), (3,), "features", "labels")


@pytest.mark.parametrize("interval, inside, outside", [
    ("(0, 1)", [0.5, np.float32(0.1)], [0, 1, 1.0, -0.1, np.nan, True]),
    ("[0, 1)", [0, 0.0, 0.999], [1, 1.0, np.inf, np.nan, False]),
    ("[0, 1]", [0, 1, 1.0], [1.01, -1e-9, np.nan, np.inf, "0.5"]),
])
def test_fraction_of_each_interval(interval, inside, outside):
    for value in inside:
        assert validation.fraction("f", value, interval) == float(value)
    for value in outside:
        with pytest.raises(InvalidArgument, match=rf"^f must be a number in \{interval[0]}0, 1\{interval[-1]}; got f="):
            validation.fraction("f", value, interval)


@pytest.mark.parametrize("check, bad, match", [
    (validation.flag, 1, r"^a must be True or False; got a=1\.$"),
    (validation.patience, True, r"^a must be None or a patience, an integer >= 0; got a=True\.$"),
    (validation.non_negative_int, False, r"^a must be an integer >= 0; got a=False\.$"),
    (validation.positive_int_or_inf, 0, r"^a must be an integer >= 1 or numpy.inf; got a=0\.$"),
    (validation.hidden_sizes, (4, 0), r"^a must be a positive int or a tuple of positive ints, e.g. \(20, 5\); got "
                                      r"a=\(4, 0\)\.$"),
    (validation.name, "", r"^a must be a non-empty string; got a=''\.$"),
    (validation.steps, 2**63, r"^a must be an integer between 1 and 9223372036854775807 \(Keras counts steps"),
])
def test_named_checks_refuse_in_one_wording(check, bad, match):
    with pytest.raises(InvalidArgument, match=match):
        check("a", bad)


def test_positive_number_within_a_dtype():
    assert validation.positive_number("learning_rate", 1e300, dtype="float64") == 1e300
    with pytest.raises(InvalidArgument, match=r"^learning_rate=1e\+300 is beyond the range of float32 \(largest "
                       r"3.4e\+38\); give a smaller learning_rate\.$"):
        validation.positive_number("learning_rate", 1e300, dtype="float32")


def test_seed_without_none():
    assert validation.seed(None) is None
    with pytest.raises(InvalidArgument, match=r"^seed must be an integer between 0 and 4294967295; got seed=None\.$"):
        validation.seed(None, allow_none=False)
