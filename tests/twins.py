"""The twins as the tests drive them: one name per way of training (``from twins import ...``).

``keras-fit`` is Keras's ``model.fit``, ``keras-tf-loop`` the compiled ``tf.function`` step, ``torch``
the PyTorch twin; the Keras ones need TensorFlow.

Cases rotate rather than multiply (:func:`rotate`): a feature's test runs the product of the
parameters that interact in it (each twin has its own step, batch loop and dtype handling, so the
twin is nearly always one of them) while the others (the head, the optimizer, ...) take their values
in turn, each at least once. ``model.fit`` runs the TensorFlow kernels of the tf-loop, ten times
slower: a feature gets one ``keras-fit`` case, the rest go to :data:`LOOPS`.
"""

import pytest
from problems import binary_problem, multiclass_problem, regression_problem

from twinnet import torch_twin

#: Twin -> its marks: the Keras ones need TensorFlow; model.fit runs the TensorFlow kernels of the
#: tf-loop, so its cases are left out of CI's narrowed pass. ("keras": the Keras twin's gradients.)
_MARKS = {"keras-fit": [pytest.mark.tf, pytest.mark.model_fit], "keras-tf-loop": [pytest.mark.tf], "torch": [],
          "keras": [pytest.mark.tf]}
TWINS = [pytest.param(twin, marks=_MARKS[twin]) for twin in ("keras-fit", "keras-tf-loop", "torch")]
#: The twins each feature runs in full: all but model.fit.
LOOPS = ["keras-tf-loop", "torch"]


#: The twin tests' small problems: M examples (batch_size=12 makes three batches of 12 and one of 4,
#: shuffled with seed 3); head -> (output, layer widths, data), 4 features and two hidden layers (dropout
#: and batch normalization act between them).
M = 40
PROBLEMS = {
    "sigmoid": ("sigmoid", [4, 6, 5, 1], binary_problem(M, 4, rule="square", seed=0)),
    "softmax": ("softmax", [4, 6, 5, 3], multiclass_problem(M, 4, 3, seed=0)),
    "linear-1": ("linear", [4, 6, 5, 1], regression_problem(M, 4, 1, seed=0)),
    "linear-2": ("linear", [4, 6, 5, 2], regression_problem(M, 4, 2, seed=0)),
}
#: Relative tolerance of a twin's curves and weights against Network's, by dtype (see each test file).
TOL = {"float64": 1e-12, "float32": 1e-4}


def rotate(kept, **rotating):
    """``pytest.mark.parametrize`` cases: each row of ``kept``, then the rotating parameters' values in turn.

    A ``kept`` row is a tuple; the arguments are named in that order, then
    in the order of ``rotating``. Case ``i`` takes ``values[i % len(values)]`` of each rotating
    parameter, so each of its values appears once the cases are as many. A case carries its twin's
    marks, and its id names every value.
    """
    cases = []
    for i, row in enumerate(kept):
        values = (*row, *(choices[i % len(choices)] for choices in rotating.values()))
        marks = [mark for value in values if isinstance(value, str) for mark in _MARKS.get(value, [])]
        cases.append(pytest.param(*values, marks=marks,
                                  id="-".join("full-batch" if v is None else str(v) for v in values)))
    return cases


def import_keras_twin():
    """``twinnet.keras_twin``, imported when a test needs it."""
    pytest.importorskip("keras")  # TensorFlow is installed wherever these tests run (CI)
    from twinnet import keras_twin

    return keras_twin


def build(twin, parameters, **options):
    if twin == "torch":
        return torch_twin.to_torch(parameters, **options)
    return import_keras_twin().to_keras(parameters, **options)


def train(twin, model, X, y, **options):
    if twin == "torch":
        return torch_twin.train(model, X, y, **options)
    return import_keras_twin().train(model, X, y, loop=twin.removeprefix("keras-"), **options)


def weights(twin, model):
    return torch_twin.from_torch(model) if twin == "torch" else import_keras_twin().from_keras(model)
