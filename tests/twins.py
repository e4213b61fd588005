"""The twins as the tests drive them: one name per way of training (``from twins import ...``).

``keras-fit`` is Keras's ``model.fit``, ``keras-tf-loop`` the compiled ``tf.function`` step, ``torch``
the PyTorch twin; the Keras ones need TensorFlow.
"""

import pytest

from twinnet import torch_twin

#: Twin -> how it is built and trained; the Keras ones need TensorFlow.
# model.fit runs the TensorFlow kernels of the tf-loop: its cases are left out of CI's narrowed pass
TWINS = [pytest.param("keras-fit", marks=[pytest.mark.tf, pytest.mark.model_fit]),
         pytest.param("keras-tf-loop", marks=pytest.mark.tf), "torch"]


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
