"""Learning-rate schedules: Keras's values bit for bit, their arguments checked, command-line specs."""

import math

import numpy as np
import pytest

from twinnet.nn import float32
from twinnet.nn.schedules import (
    SCHEDULES,
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstantDecay,
    check_learning_rate,
)
from twinnet.nn.schedule_parse import parse
from twinnet.validation import InvalidArgument

STEPS = 2001  # steps 0 .. 2000

#: (class, arguments): the table every exactness test runs over.
CASES = [
    (ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.5)),
    (ExponentialDecay, dict(initial_learning_rate=0.01, decay_steps=7, decay_rate=0.96)),
    (ExponentialDecay, dict(initial_learning_rate=1e-3, decay_steps=1000, decay_rate=0.1)),
    (ExponentialDecay, dict(initial_learning_rate=0.05, decay_steps=1, decay_rate=0.99)),
    (ExponentialDecay, dict(initial_learning_rate=0.3, decay_steps=33, decay_rate=0.9, staircase=True)),
    # decays into float32's subnormals, which TensorFlow flushes to 0
    (ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5, staircase=True)),
    (ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5)),
    # grows, up to float32's inf
    (ExponentialDecay, dict(initial_learning_rate=0.2, decay_steps=2, decay_rate=1.5)),
    (InverseTimeDecay, dict(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.5)),
    (InverseTimeDecay, dict(initial_learning_rate=0.01, decay_steps=7, decay_rate=0.96)),
    (InverseTimeDecay, dict(initial_learning_rate=1e-3, decay_steps=1000, decay_rate=0.1)),
    (InverseTimeDecay, dict(initial_learning_rate=0.2, decay_steps=13, decay_rate=1.5)),
    (InverseTimeDecay, dict(initial_learning_rate=0.3, decay_steps=33, decay_rate=0.9, staircase=True)),
    (InverseTimeDecay, dict(initial_learning_rate=0.7, decay_steps=11, decay_rate=0.3, staircase=True)),
    (PiecewiseConstantDecay, dict(boundaries=[100, 500], values=[0.1, 0.05, 0.01])),
    (PiecewiseConstantDecay, dict(boundaries=[0], values=[0.3, 0.03])),
    (PiecewiseConstantDecay, dict(boundaries=[1, 2, 3, 1000, 1999], values=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])),
    (CosineDecay, dict(initial_learning_rate=0.1, decay_steps=1000)),
    (CosineDecay, dict(initial_learning_rate=0.05, decay_steps=333, alpha=0.1)),
    (CosineDecay, dict(initial_learning_rate=1.0, decay_steps=2000, alpha=0.5)),
    (CosineDecay, dict(initial_learning_rate=0.1, decay_steps=77)),
    (CosineDecay, dict(initial_learning_rate=0.02, decay_steps=1999, alpha=1.0)),
    (CosineDecay, dict(initial_learning_rate=0.0, decay_steps=1000, warmup_target=0.2, warmup_steps=100)),
    (CosineDecay, dict(initial_learning_rate=0.01, decay_steps=500, alpha=0.05, warmup_target=0.1, warmup_steps=37)),
    (CosineDecay, dict(initial_learning_rate=0.3, decay_steps=1500, warmup_target=0.03, warmup_steps=400)),
    (CosineDecay, dict(initial_learning_rate=1e-3, decay_steps=123, alpha=0.3, warmup_target=0.5, warmup_steps=0)),
    (CosineDecay, dict(initial_learning_rate=1e-3, decay_steps=10, alpha=0.2, warmup_target=0.5, warmup_steps=2500)),
]
IDS = [f"{cls.kind}-{i}" for i, (cls, _) in enumerate(CASES)]


def ours(cls, kwargs, steps=STEPS):
    schedule = cls(**kwargs)
    return np.array([schedule(step) for step in range(steps)], np.float32)


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")  # TensorFlow is installed wherever these tests run (CI)


@pytest.fixture(scope="module")
def keras_fit_values(keras):
    """Keras's value of every case at steps 0 .. 2000, as its ``fit`` computes them: in a ``tf.function``.

    One graph maps each schedule over the steps (``test_keras_fit_uses_the_graph_values`` holds
    this graph to the values Keras's own ``fit`` trains with).
    """
    import tensorflow as tf

    twins = [getattr(keras.optimizers.schedules, cls.__name__).from_config(cls(**kwargs).get_config())
             for cls, kwargs in CASES]

    @tf.function
    def values(steps):
        return [tf.map_fn(twin, steps, fn_output_signature=tf.float32) for twin in twins]

    return [np.asarray(v) for v in values(tf.constant(np.arange(STEPS), tf.int64))]


@pytest.mark.tf
@pytest.mark.exact
@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_values_equal_keras_bit_for_bit(case, keras_fit_values):
    cls, kwargs = CASES[case]
    mine, theirs = ours(cls, kwargs), keras_fit_values[case]
    differ = np.flatnonzero(mine != theirs)
    assert differ.size == 0, (f"{cls.__name__}({kwargs}): {differ.size} of {STEPS} steps differ from Keras, first at "
                              f"steps {differ[:5].tolist()}: ours {mine[differ[:5]].tolist()}, "
                              f"Keras {theirs[differ[:5]].tolist()}")


@pytest.mark.tf
@pytest.mark.exact
def test_keras_fit_uses_the_graph_values(keras):
    """Keras's ``fit`` trains with the values of the graph above: SGD steps read each one back.

    A custom ``train_step`` sets a weight to 0 and applies one SGD step of gradient 1 to it, so the
    weight becomes ``-learning_rate`` exactly, for one optimizer per schedule class.
    """
    import tensorflow as tf

    picks = [CASES[1], CASES[13], CASES[16], CASES[23]]  # one per class; the cosine one warms up
    steps = 120

    class Probe(keras.Model):
        def __init__(self):
            super().__init__()
            self.optimizers_ = [keras.optimizers.SGD(learning_rate=getattr(keras.optimizers.schedules, cls.__name__)
                                                     .from_config(cls(**kwargs).get_config())) for cls, kwargs in picks]

        def build(self, input_shape):
            self.w = [self.add_weight(shape=(), initializer="zeros") for _ in picks]

        def call(self, x):
            return x

        def train_step(self, data):
            for w, optimizer in zip(self.w, self.optimizers_):
                w.assign(0.0)
                optimizer.apply([tf.ones_like(w)], [w])
            return {f"lr{i}": -w.value for i, w in enumerate(self.w)}

    probe = Probe()
    probe.build((None, 1))
    probe.compile()
    rates = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: rates.append(
        [logs[f"lr{i}"] for i in range(len(picks))]))
    probe.fit(np.zeros((steps, 1), "float32"), epochs=1, batch_size=1, verbose=0, shuffle=False, callbacks=[record])
    rates = np.array(rates, np.float32)
    for i, (cls, kwargs) in enumerate(picks):
        np.testing.assert_array_equal(ours(cls, kwargs, steps), rates[:, i], err_msg=f"{cls.__name__}({kwargs})")


@pytest.mark.tf
@pytest.mark.exact
def test_eager_keras_differs_from_what_fit_uses(keras):
    """The module's claim: calling a Keras schedule eagerly gives other values than its fit uses.

    Tolerance: ``step / 100`` and ``step * (1 / 100)`` differ by an ulp of the exponent, which
    ``0.5 ** p`` turns into a relative error of ``p * ln 2 * 2**-24`` at most, < 2**-23 for p < 1.
    """
    import tensorflow as tf

    cls, kwargs = CASES[0]
    twin = keras.optimizers.schedules.ExponentialDecay(**kwargs)
    eager = np.array([twin(tf.constant(step, tf.int64)) for step in range(1, 60)], np.float32)
    mine = ours(cls, kwargs, 60)[1:]
    assert (mine != eager).any()
    np.testing.assert_allclose(mine, eager, rtol=2**-22)


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_without_the_c_library_values_stay_within_float32_rounding(case, monkeypatch):
    """The fallback for ``cosf`` and ``powf`` (float64, rounded): off by float32's rounding at most.

    Tolerance: an ulp of cos near -1 is 6e-8, which ``1 + cos`` keeps as an absolute error; times
    the learning rate the decay starts from, with a factor 2 for the ops after it.
    """
    cls, kwargs = CASES[case]
    exact = ours(cls, kwargs)
    monkeypatch.setattr(float32, "_libm", lambda: None)
    fallback = ours(cls, kwargs)
    scale = max(v for k, v in kwargs.items() if k in ("initial_learning_rate", "warmup_target", "values")
                for v in (v if isinstance(v, list) else [v]))
    finite = np.isfinite(exact)
    np.testing.assert_array_equal(np.isfinite(fallback), finite)
    np.testing.assert_allclose(fallback[finite], exact[finite], rtol=2**-22, atol=2 * 2**-23 * scale)


@pytest.mark.tf
@pytest.mark.parametrize("cls", SCHEDULES.values(), ids=list(SCHEDULES))
def test_get_config_has_keras_keys(cls, keras):
    kwargs = next(kwargs for c, kwargs in CASES if c is cls)
    twin = getattr(keras.optimizers.schedules, cls.__name__)(**kwargs)
    assert list(cls(**kwargs).get_config()) == list(twin.get_config())
    assert cls(**kwargs).get_config()["name"] == twin.get_config()["name"]


# --------------------------------------------------------------------------- hand-checked values
def test_values_by_hand():
    exponential = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert exponential(0) == np.float32(0.1)
    assert exponential(10) == np.float32(0.05)  # 0.1 * 0.5 ** 1
    assert ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == np.float32(0.05)  # floor(1.9) = 1
    assert InverseTimeDecay(0.1, decay_steps=10, decay_rate=1.0)(10) == np.float32(0.05)  # 0.1 / (1 + 1)
    piecewise = PiecewiseConstantDecay([10, 20], [0.3, 0.2, 0.1])
    assert [piecewise(s) for s in (0, 10, 11, 20, 21)] == [np.float32(v) for v in (0.3, 0.3, 0.2, 0.2, 0.1)]
    cosine = CosineDecay(0.0, decay_steps=100, alpha=0.5, warmup_target=0.2, warmup_steps=10)
    assert cosine(5) == np.float32(0.1)  # halfway up the warm-up
    assert cosine(10) == np.float32(0.2)  # the top: cos(0) = 1
    assert cosine(110) == cosine(10_000) == np.float32(0.1)  # alpha * warmup_target once decayed
    assert isinstance(cosine(3), float)


# --------------------------------------------------------------------------- bad input
BAD = [
    (lambda: ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5),
     "decay_steps must be an integer >= 1; got decay_steps=0"),
    (lambda: ExponentialDecay(0.1, decay_steps=10.5, decay_rate=0.5), "decay_steps must be an integer >= 1"),
    (lambda: ExponentialDecay(0.1, decay_steps=10, decay_rate=0),
     "decay_rate must be a finite number > 0; got decay_rate=0"),
    (lambda: ExponentialDecay(0.1, decay_steps=10, decay_rate=-0.5), "decay_rate must be a finite number > 0"),
    (lambda: ExponentialDecay(-0.1, 10, 0.5), "initial_learning_rate must be a finite number > 0"),
    (lambda: ExponentialDecay(float("nan"), 10, 0.5), "initial_learning_rate must be a finite number > 0"),
    (lambda: ExponentialDecay(1e39, 10, 0.5),
     r"initial_learning_rate must be between 1.2e-38 and 3.4e38, the range of float32"),
    (lambda: ExponentialDecay(1e-40, 10, 0.5), "initial_learning_rate must be between 1.2e-38"),
    (lambda: ExponentialDecay(0.1, 10, 0.5, staircase="yes"), "staircase must be True or False; got staircase='yes'"),
    (lambda: ExponentialDecay(0.1, 10, 0.5, name=""), "name must be a non-empty string"),
    (lambda: InverseTimeDecay(0.1, decay_steps=-3, decay_rate=0.5), "decay_steps must be an integer >= 1"),
    (lambda: InverseTimeDecay(0.1, decay_steps=3, decay_rate=math.inf), "decay_rate must be a finite number > 0"),
    (lambda: PiecewiseConstantDecay([], [0.1]), r"boundaries must be a list of at least one integer step"),
    (lambda: PiecewiseConstantDecay([10.5], [0.1, 0.01]), r"boundaries must be a list of at least one integer step"),
    (lambda: PiecewiseConstantDecay([100, 50], [0.1, 0.05, 0.01]),
     r"boundaries must be strictly increasing steps >= 0"),
    (lambda: PiecewiseConstantDecay([10, 10], [0.1, 0.05, 0.01]), r"boundaries must be strictly increasing"),
    (lambda: PiecewiseConstantDecay([-1], [0.1, 0.05]), r"boundaries must be strictly increasing steps >= 0"),
    (lambda: PiecewiseConstantDecay([10, 20], [0.1, 0.01]),
     r"values must hold len\(boundaries\) \+ 1 = 3 learning rates, one per interval"),
    (lambda: PiecewiseConstantDecay([10], [0.1, -0.01]),
     r"values\[1\] must be a finite number > 0; got values\[1\]=-0.01"),
    (lambda: CosineDecay(0.1, decay_steps=0), "decay_steps must be an integer >= 1"),
    (lambda: CosineDecay(0.1, decay_steps=100, alpha=1.5), r"alpha must be a number in \[0, 1\]; got alpha=1.5"),
    (lambda: CosineDecay(0.1, decay_steps=100, alpha=-0.1), r"alpha must be a number in \[0, 1\]"),
    (lambda: CosineDecay(0.0, decay_steps=100),
     "initial_learning_rate must be a finite number > 0; got initial_learning_rate=0.0"),
    (lambda: CosineDecay(0.0, decay_steps=100, warmup_target=-1.0, warmup_steps=5),
     "warmup_target must be a finite number > 0"),
    (lambda: CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=-5),
     "warmup_steps must be an integer >= 0"),
    (lambda: CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=True),
     "warmup_steps must be an integer >= 0"),
    (lambda: CosineDecay(0.01, decay_steps=100, warmup_steps=50),
     r"warmup_steps=50 needs warmup_target, the learning rate"),
    (lambda: check_learning_rate(-0.1), r"learning_rate must be a finite number > 0 or a schedule such as "
                                        r"twinnet.nn.schedules.ExponentialDecay"),
    (lambda: check_learning_rate("0.1"), "learning_rate must be a finite number > 0 or a schedule"),
]


@pytest.mark.parametrize("make, match", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_arguments_are_named(make, match):
    with pytest.raises(InvalidArgument, match=match):
        make()


def test_check_learning_rate_passes_floats_and_schedules():
    schedule = CosineDecay(0.1, 100)
    assert check_learning_rate(schedule) is schedule
    assert check_learning_rate(np.float32(0.5)) == 0.5 and isinstance(check_learning_rate(1), float)


# --------------------------------------------------------------------------- command-line specs
@pytest.mark.parametrize("text, initial, expected", [
    ("exponential:decay_steps=100,decay_rate=0.5", 0.1, ExponentialDecay(0.1, 100, 0.5)),
    (" exponential : decay_steps = 100 , decay_rate=0.5, staircase=true", 0.1,
     ExponentialDecay(0.1, 100, 0.5, staircase=True)),
    ("inverse_time:initial_learning_rate=0.3,decay_steps=10,decay_rate=2", 0.1, InverseTimeDecay(0.3, 10, 2.0)),
    ("piecewise:boundaries=[100,500],values=[0.1,0.05,0.01]", 0.7,
     PiecewiseConstantDecay([100, 500], [0.1, 0.05, 0.01])),
    ("piecewise:boundaries=100,values=[0.1,0.01]", None, PiecewiseConstantDecay([100], [0.1, 0.01])),
    ("cosine:decay_steps=500,warmup_steps=50,warmup_target=0.2", 0.0,
     CosineDecay(0.0, 500, warmup_target=0.2, warmup_steps=50)),
    ("cosine:decay_steps=500,alpha=0.1", 1e-3, CosineDecay(1e-3, 500, alpha=0.1)),
])
def test_parse(text, initial, expected):
    assert parse(text, initial_learning_rate=initial) == expected


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_to_spec_parses_back(case):
    cls, kwargs = CASES[case]
    schedule = cls(**kwargs)
    assert parse(schedule.to_spec()) == schedule
    assert repr(schedule).startswith(f"{cls.__name__}(") and "name=" not in repr(schedule)


@pytest.mark.parametrize("text, match", [
    ("expo:decay_steps=100", r"schedule 'expo:decay_steps=100': unknown schedule 'expo'; expected one of: "
                             r"'exponential', 'inverse_time', 'piecewise', 'cosine'"),
    ("", r"unknown schedule ''"),
    ("exponential:decay_steps", r"expected KEY=VALUE, got 'decay_steps'; form: exponential:KEY=VALUE"),
    ("exponential:decay=100,decay_rate=0.5", r"exponential has no argument 'decay'; it takes initial_learning_rate, "
                                             r"decay_steps, decay_rate, staircase"),
    ("exponential:decay_steps=1e2,decay_rate=0.5", r"decay_steps must be an integer; got decay_steps='1e2'"),
    ("exponential:decay_steps=100,decay_rate=half", r"decay_rate must be a number; got decay_rate='half'"),
    ("exponential:decay_steps=100,decay_rate=0.5,staircase=maybe", r"staircase must be true or false"),
    ("exponential:decay_steps=100,decay_steps=10,decay_rate=0.5", r"decay_steps is given twice"),
    ("exponential:decay_steps=100",
     r"exponential needs decay_rate \(e.g. 'exponential:decay_steps=100,decay_rate=0.5'\)"),
    ("exponential:decay_steps=0,decay_rate=0.5",
     r"decay_steps must be an integer >= 1; got decay_steps=0. "
     r"\(in schedule 'exponential:decay_steps=0,decay_rate=0.5'\)"),
    ("piecewise:boundaries=[100,],values=[0.1,0.01]", r"boundaries must be a list like boundaries=\[100,500\]"),
    ("piecewise:boundaries=[100],values=[0.1,x]", r"values must be a number; got values='x'"),
    ("cosine:decay_steps=500,warmup_steps=50", r"warmup_steps=50 needs warmup_target"),
])
def test_parse_refuses_bad_specs_naming_the_key(text, match):
    with pytest.raises(InvalidArgument, match=match):
        parse(text, initial_learning_rate=0.1)


def test_parse_needs_an_initial_learning_rate():
    with pytest.raises(InvalidArgument, match=r"initial_learning_rate is missing: give it in the spec"):
        parse("cosine:decay_steps=500")
    with pytest.raises(InvalidArgument, match=r"schedule must be a string"):
        parse(0.1)
