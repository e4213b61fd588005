"""Output heads: the output layer's activation, its loss and the loss's gradient, as a table.

Each head pairs an output activation with the loss it is trained on, computed from the logits ``z``
(the output layer's pre-activations), so that the loss never takes the log of a rounded
probability and the gradient ``dL/dz`` has the fused form every framework differentiates to:

- ``sigmoid``: one unit, ``p = sigmoid(z)``; the log-loss (``binary_crossentropy`` from the
  logits); ``dL/dz = (p - y) / m``.
- ``softmax``: ``K >= 2`` units, ``p = softmax(z)``; the categorical cross-entropy
  ``log(sum exp z) - z_y`` (Keras's sparse categorical cross-entropy from the logits);
  ``dL/dz = (p - onehot(y)) / m``.
- ``linear``: any number ``k`` of units, the output is ``z``; the mean squared error over examples
  and outputs; ``dL/dz = 2 (z - y) / (m k)``.

Layouts follow the engine's: the logits, outputs and targets are columns, ``(K, m)``. Targets in
the engine are a sigmoid's labels as a float row ``(1, m)``, a softmax's labels as an int64 row
``(1, m)`` (no one-hot matrix is formed), and a linear head's targets as ``(k, m)``. Each head
also names its training metric: the fraction of correct labels for the classifiers, the root
mean squared error for regression.

The kernels write into :class:`twinnet.nn.engine.Buffers` and allocate nothing; they run with
underflow ignored (``Network`` sees to it): an ``exp`` of a very negative shifted logit rounds to 0,
the right value next to the terms of order 1 it meets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from twinnet import validation

__all__ = ["DEFAULT_OUTPUT", "HEADS", "Head", "KerasHead", "TorchHead", "check_targets", "default_output", "head"]


# --------------------------------------------------------------------------- sigmoid and log-loss
def _sigmoid_output(z, buf):
    # One exp serves the output sigmoid and the loss: with e = exp(-|z|) <= 1 (never overflows),
    # sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0; the numerator max(sign(z), e)
    # is 1 for z >= 0 (e = 1 at z = 0) and e below. The loss needs log1p(e). scipy's expit and
    # log_expit would make two passes with an exp each, slower than the eight below, which share
    # one exp. For |z| beyond ~87 (float32) or ~708 (float64) e underflows: the caller ignores that.
    e, num, den = buf.t, buf.u, buf.s
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.sign(z, out=num)
    np.maximum(num, e, out=num)
    np.add(e, 1, out=den)
    np.divide(num, den, out=buf.p)
    np.log1p(e, out=e)


def _log_loss(z, y, buf):
    # mean(max(z, 0) - z y + log1p(exp(-|z|))): TensorFlow's sigmoid_cross_entropy_with_logits,
    # term for term and in the same order. It equals -(y log p + (1 - y) log(1 - p)) but stays
    # exact where p saturates to 0 or 1, and exp only sees -|z| <= 0.
    t, u, s = buf.t, buf.u, buf.s  # t = log1p(exp(-|z|)), from the output
    np.maximum(z, 0, out=u)
    np.multiply(z, y, out=s)
    np.subtract(u, s, out=u)
    np.add(u, t, out=u)
    return float(u.sum()) / z.shape[1]


def _sigmoid_delta(y, buf, m):
    # The sigmoid's derivative p (1 - p) cancels the 1 / (p (1 - p)) of the log-loss's derivative
    # -(y / p - (1 - y) / (1 - p)): the fused form never divides by p or 1 - p, and is what
    # TensorFlow differentiates sigmoid_cross_entropy_with_logits to.
    np.subtract(buf.p, y, out=buf.dz)
    np.divide(buf.dz, m, out=buf.dz)


def _sigmoid_hits(y_aux, buf, loss):
    # the count of correct labels
    hit = buf.hit
    np.greater(buf.p, 0.5, out=hit)  # the notebook's rule
    np.equal(hit, y_aux, out=hit)
    return int(np.count_nonzero(hit))


def _sigmoid_predict(buf):
    return (buf.p[0] > 0.5).astype(np.int64)


# --------------------------------------------------------------------------- softmax and cross-entropy
def _softmax_output(z, buf):
    # t = z - max(z) <= 0 per column, so exp never overflows and the sum s >= 1: log s is safe.
    # This is the order of TensorFlow's SparseSoftmaxXentWithLogits kernel.
    t, s = buf.t, buf.s
    np.max(z, axis=0, keepdims=True, out=buf.r)
    with np.errstate(over="ignore"):  # logits further apart than the dtype's range: -inf, whose exp is 0
        np.subtract(z, buf.r, out=t)
    np.exp(t, out=buf.p)
    np.sum(buf.p, axis=0, keepdims=True, out=s)
    np.divide(buf.p, s, out=buf.p)
    np.log(s, out=s)


def _label_positions(y, buf):
    # flat positions of (y_i, i) in a (K, rows) C-ordered buffer: y_i * rows + i
    np.multiply(y, buf.rows, out=buf.at)
    np.add(buf.at, buf.columns, out=buf.at)
    return buf.at


def _cross_entropy(z, y, buf):
    # per example log(sum exp t) - t_y, t = z - max z (TensorFlow's order), then the mean
    # mode="clip" writes straight into out (the labels were checked); "raise" would buffer a copy
    picked = np.take(buf.t, _label_positions(y, buf), out=buf.r, mode="clip")
    np.subtract(buf.s, picked, out=picked)
    return float(picked.sum()) / z.shape[1]


def _softmax_delta(y, buf, m):
    # softmax(z) - onehot(y): the probabilities with 1 taken from each example's label
    dz = buf.dz
    np.copyto(dz, buf.p)
    at, picked = _label_positions(y, buf), buf.r
    np.take(dz, at, out=picked, mode="clip")
    np.subtract(picked, 1, out=picked)
    np.put(dz, at, picked)
    np.divide(dz, m, out=dz)


def _most_probable(buf):
    # argmax over the K rows of p, the first of equal maxima as np.argmax takes, row by row:
    # np.argmax(p, axis=0) on a C-ordered (K, m) array would copy all of p first
    p, best, label, better = buf.p, buf.r[0], buf.label, buf.hit[0]
    np.copyto(best, p[0])
    label[:] = 0
    for k in range(1, p.shape[0]):
        np.greater(p[k], best, out=better)
        np.copyto(label, k, where=better)
        np.maximum(best, p[k], out=best)
    return label


def _softmax_hits(y_aux, buf, loss):
    np.equal(_most_probable(buf), y_aux[0], out=buf.hit[0])
    return int(np.count_nonzero(buf.hit))


def _softmax_predict(buf):
    return _most_probable(buf).copy()


# --------------------------------------------------------------------------- linear and squared error
def _linear_output(z, buf):
    pass  # the output is the logits, buf.z (buf.p is not used)


def _squared_error(z, y, buf):
    # Keras's mean_squared_error: the mean over outputs and examples of (z - y)^2
    d = np.subtract(z, y, out=buf.u)
    flat = d.reshape(-1)
    with np.errstate(over="ignore"):  # errors beyond sqrt of the dtype's range: an infinite loss, reported
        return float(np.dot(flat, flat)) / d.size


def _linear_delta(y, buf, m):
    # d/dz of sum((z - y)^2) / (m k); k = number of outputs
    np.subtract(buf.z, y, out=buf.dz)
    np.multiply(buf.dz, 2 / (m * buf.dz.shape[0]), out=buf.dz)


def _squared_errors(y_aux, buf, loss):
    # the sum over the batch of each example's mean squared error (over the outputs): the batch's mean
    # squared error times its rows; over an epoch, its mean squared error times m
    return loss * buf.rows


def _linear_predict(buf):
    z = buf.z
    return z[0].copy() if z.shape[0] == 1 else z.T.copy()


# --------------------------------------------------------------------------- layouts and more metrics
def _row(a):
    return a[0].copy()  # one unit: (1, m) -> (m,)


def _rows(a):
    return a.T.copy()  # K units: (K, m) -> (m, K)


def _r2(buf, y):
    """scikit-learn's ``r2_score(y, z, multioutput="uniform_average")`` for columns ``(k, m)``."""
    z = buf.z
    residual = ((y - z) ** 2).sum(axis=1)
    total = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    constant = total == 0
    scores = np.where(constant, (residual == 0).astype(float), 1 - residual / np.where(constant, 1, total))
    return float(scores.mean())


# --------------------------------------------------------------------------- the twins' counterparts
# Each takes the framework's module (imported by the twin, so that twinnet imports neither).
def _keras_sigmoid_hits(tf, p, t):
    return tf.reduce_sum(tf.cast(tf.equal(tf.cast(p > 0.5, t.dtype), t), tf.int64))  # the notebook's rule


def _keras_softmax_hits(tf, p, t):
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(p, axis=1), t[:, 0]), tf.int64))  # the first of equal ones


def _keras_squared_errors(tf, p, t):
    # each example's mean over the outputs of the squared error, summed: the data's alone, without
    # the L2 penalty, as Keras's RootMeanSquaredError and Network's rmse
    return tf.reduce_sum(tf.reduce_mean(tf.square(p - t), axis=1))


def _torch_sigmoid_hits(torch, z, y, loss):
    return int(((torch.sigmoid(z) > 0.5) == (y == 1)).sum())  # the notebook's rule, on the probability


def _torch_softmax_hits(torch, z, y, loss):
    return int((torch.softmax(z, dim=1).argmax(dim=1) == y).sum())  # the first of equal ones, as np.argmax


def _torch_squared_errors(torch, z, y, loss):
    return loss.item() * len(z)  # the batch's mean squared error times its rows, as Network's


class KerasHead(NamedTuple):
    """A head as a Keras user writes it: the last ``Dense`` layer's activation, ``compile``'s loss and metric.

    ``metric`` is ``"accuracy"`` (Keras picks the binary or sparse categorical one) or ``"rmse"``
    (Keras's ``RootMeanSquaredError`` under Network's name); ``metric_sum(tf, p, t)`` is the
    batch's sum behind the metric in the twin's ``tf.function`` loop, as :attr:`Head.metric_sum`.
    """

    activation: str
    loss: str
    metric: str
    metric_sum: Callable


class TorchHead(NamedTuple):
    """A head as a PyTorch user writes it, from the model's logits ``z`` of shape ``(m, n_L)``.

    ``loss`` names the function of ``torch.nn.functional`` (the batch mean); ``targets`` turns
    Network's checked targets ``(n_L, m)`` or ``(1, m)`` into its layout; ``metric_sum(torch, z, y,
    loss)`` is the batch's sum behind the metric, as :attr:`Head.metric_sum`.
    """

    loss: str
    targets: Callable
    metric_sum: Callable


# --------------------------------------------------------------------------- targets
def _binary_targets(y, X_shape, width, dtype, name):
    y = _as_labels(y, X_shape, name, "the labels 0 and 1", "Map two classes to 0 and 1")
    validation.binary_labels(name, y, hint=" For more classes use a softmax head (output='softmax').")
    return y.astype(dtype).reshape(1, -1), y.astype(bool).reshape(1, -1)


def _class_targets(y, X_shape, width, dtype, name):
    y = _as_labels(y, X_shape, name, f"the labels 0 .. {width - 1}", f"Map {width} classes to 0 .. {width - 1}")
    whole = (y == np.round(y)) if np.issubdtype(y.dtype, np.floating) else np.ones(y.shape, bool)
    ok = whole & (y >= 0) & (y < width)
    if not ok.all():
        raise ValueError(f"{name} must contain the class labels 0 .. {width - 1} of this softmax head of width "
                         f"{width}; got also: {_shown(np.unique(y[~ok]))}.")
    labels = y.astype(np.int64).reshape(1, -1)
    return labels, labels


def _value_targets(y, X_shape, width, dtype, name):
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool) or np.iscomplexobj(y):
        raise ValueError(f"{name} must hold real numbers (regression targets); got dtype {y.dtype}.")
    columns = y.reshape(-1, 1) if y.ndim == 1 else y
    expected = "(m,) or (m, 1)" if width == 1 else f"(m, {width})"
    if columns.ndim != 2 or columns.shape[0] != X_shape[0] or columns.shape[1] != width:
        raise _length_or_shape(name, y, X_shape, f"of shape {expected}, one column per output of this linear head "
                                           f"of width {width}")
    with np.errstate(over="ignore"):  # beyond float32's range becomes inf: reported below
        out = np.ascontiguousarray(columns.T, dtype=dtype)  # (k, m)
    if not np.isfinite(out).all():
        example = int(np.argwhere(~np.isfinite(out))[0][1])
        raise ValueError(f"{name} contains NaN or inf (first at example {example}, in {np.dtype(dtype).name}).")
    return out, None


def _as_labels(y, X_shape, name, labels, mapping):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != X_shape[0]:
        one_hot = " (one-hot rows? pass their labels, y.argmax(axis=1))" if y.ndim == 2 and y.shape[1] > 1 else ""
        raise _length_or_shape(name, y, X_shape, f"of shape (m,) (or a column (m, 1)){one_hot}")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool) or np.iscomplexobj(y):
        raise ValueError(f"{name} must hold {labels}; got dtype {y.dtype}. {mapping} first "
                         "(TwinNetClassifier does this for any labels).")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or inf.")
    return y


def _length_or_shape(name, y, X_shape, expected):
    if y.ndim >= 1:
        validation.same_examples(X_shape, y.shape, "X", name)
    return ValueError(f"{name} must be {expected}; got {name}.shape={y.shape}.")


def _shown(values):
    return ", ".join(str(v) for v in values[:5]) + (", ..." if values.size > 5 else "")


# --------------------------------------------------------------------------- the table
class Head(NamedTuple):
    """An output head, one row: everything that differs from one head to another.

    ``classifier``: whether it predicts labels; ``widths``: the fewest and most output units it
    accepts (``None``: any number) and, in ``width_rule``, what to say otherwise.
    ``output(z, buf)`` fills ``buf.p`` (and what the loss needs) from the logits ``buf.z``;
    ``loss(z, y, buf)`` returns the batch's mean loss (after ``output``); ``delta(y, buf, m)``
    writes ``dL/dz`` into ``buf.dz`` (after ``output``); ``metric_sum(y_aux, buf, loss)`` returns
    the batch's sum behind the metric (its count of correct labels, or its squared errors) and
    ``metric(total, m)`` turns the epoch's sum into the metric ``metrics[0]``; ``more_metrics(buf,
    y)`` the others of ``metrics`` that ``evaluate`` reports (after ``output``);
    ``predict(buf)`` returns the predictions as ``Network.predict`` does; ``columns(a)`` turns the
    probabilities or logits ``(K, m)`` into ``predict_proba``'s layout; ``targets(y, X_shape, width,
    dtype, name)`` checks the user's targets and returns ``(y, y_aux)`` in the engine's layout;
    ``keras`` and ``torch`` are the same head in the twins; ``sklearn_scale(width)`` is ``c``, the
    gradient of scikit-learn's MLP loss over ours for ``width`` outputs. ``loss_name`` names the
    loss in plots; ``data_width`` says what a data set of ``{width}`` outputs (``{s}``: a plural's ``s``) is for it.
    """

    classifier: bool
    widths: tuple
    width_rule: str
    metrics: tuple
    output: Callable
    loss: Callable
    delta: Callable
    metric_sum: Callable
    metric: Callable
    more_metrics: Callable
    predict: Callable
    columns: Callable
    targets: Callable
    keras: KerasHead
    torch: TorchHead
    sklearn_scale: Callable
    loss_name: str
    data_width: str

    def describe_data(self, width):
        """What data of ``width`` outputs (classes or targets) is for this head, in a sentence's words."""
        return self.data_width.format(width=width, s="s" if width > 1 else "")

    @property
    def binary(self):
        """Whether it classifies two classes with one unit (the sigmoid)."""
        return self.classifier and self.widths[1] == 1

    @property
    def metric_name(self):
        """The training metric, the history's key: ``"accuracy"`` or ``"rmse"``."""
        return self.metrics[0]


def _fraction(total, m):
    return total / m


def _root_mean(total, m):
    return math.sqrt(total / m)


def _none(buf, y):
    return {}


def _linear_more(buf, y):
    return {"r2": _r2(buf, y)}


def _same_scale(width):
    return 1.0  # MLPClassifier's log-loss is ours


def _half_squared_error_scale(width):
    # MLPRegressor's loss is half the mean squared error and its gradient that of the summed squared
    # error over 2: (p - y) / m at the output, where ours is 2 (p - y) / (m k)
    return width / 2


def _transposed(y):
    return y.T


def _labels(y):
    return y[0]


#: Output head name (:data:`twinnet.validation.OUTPUTS`) -> its row.
HEADS = {
    "sigmoid": Head(
        classifier=True, widths=(1, 1),
        width_rule="a sigmoid head has one output unit; got an output layer of width {width}. Use output='softmax' "
                   "for {width} classes or output='linear' for {width} regression targets.",
        metrics=("accuracy",), output=_sigmoid_output, loss=_log_loss, delta=_sigmoid_delta,
        metric_sum=_sigmoid_hits, metric=_fraction, more_metrics=_none, predict=_sigmoid_predict, columns=_row,
        targets=_binary_targets,
        keras=KerasHead("sigmoid", "binary_crossentropy", "accuracy", _keras_sigmoid_hits),
        torch=TorchHead("binary_cross_entropy_with_logits", _transposed, _torch_sigmoid_hits),  # (m, 1)
        sklearn_scale=_same_scale, loss_name="log-loss", data_width="is binary (a sigmoid head: one unit)"),
    "softmax": Head(
        classifier=True, widths=(2, None),
        width_rule="a softmax head needs an output layer of width K >= 2 (one unit per class); got width {width}. "
                   "Use output='sigmoid' for two classes with one unit.",
        metrics=("accuracy",), output=_softmax_output, loss=_cross_entropy, delta=_softmax_delta,
        metric_sum=_softmax_hits, metric=_fraction, more_metrics=_none, predict=_softmax_predict, columns=_rows,
        targets=_class_targets,
        keras=KerasHead("softmax", "sparse_categorical_crossentropy", "accuracy", _keras_softmax_hits),
        torch=TorchHead("cross_entropy", _labels, _torch_softmax_hits),  # int64 labels (m,)
        sklearn_scale=_same_scale, loss_name="cross-entropy",
        data_width="has {width} classes (a softmax head: one unit per class)"),
    "linear": Head(
        classifier=False, widths=(1, None), width_rule="",
        metrics=("rmse", "r2"), output=_linear_output, loss=_squared_error, delta=_linear_delta,
        metric_sum=_squared_errors, metric=_root_mean, more_metrics=_linear_more, predict=_linear_predict,
        columns=_rows, targets=_value_targets,
        keras=KerasHead("linear", "mean_squared_error", "rmse", _keras_squared_errors),
        torch=TorchHead("mse_loss", _transposed, _torch_squared_errors),  # (m, k)
        sklearn_scale=_half_squared_error_scale, loss_name="mean squared error",
        data_width="has {width} regression target{s} (a linear head: one unit per target)"),
}


def default_output(output, width, argument="output"):
    """The head for an output layer of ``width`` units: ``output`` checked, or sigmoid for one unit.

    A wider output layer needs the head named: ``softmax`` for ``width`` classes or ``linear`` for
    ``width`` targets. The head must fit the width: a sigmoid is one unit, a softmax at least two.
    """
    if output is None:
        if width != 1:
            raise validation.InvalidArgument(
                argument, "'softmax' or 'linear' for an output layer wider than 1", output,
                f"{argument} must be given for an output layer of width {width}: output='softmax' for "
                f"{width} classes or output='linear' for {width} regression targets.")
        return DEFAULT_OUTPUT
    output = validation.choice(argument, output, HEADS)
    fewest, most = HEADS[output].widths
    if width < fewest or (most is not None and width > most):
        expected = f"one unit for a {output} head" if most == 1 else f"at least {fewest} units for a {output} head"
        raise validation.InvalidArgument(argument, expected, output, HEADS[output].width_rule.format(width=width))
    return output


def check_targets(output, y, X_shape, width, dtype, name="y"):
    """``y`` checked for the head ``output`` of ``width`` units: ``(y, y_aux)`` in the engine's layout.

    ``X_shape`` is the shape ``(m, n_features)`` of the examples ``y`` belongs to.
    """
    return HEADS[output].targets(y, X_shape, width, dtype, name)


#: The notebook's head, the default for one output unit and for a file or run that names none.
DEFAULT_OUTPUT = "sigmoid"


def head(output):
    """The row of ``output``, a name of :data:`HEADS` or ``None``, the notebook's sigmoid."""
    return HEADS[DEFAULT_OUTPUT if output is None else output]
