"""``twinnet gradcheck``: backpropagation against finite differences, as a table with a verdict."""

from __future__ import annotations

#: Largest relative error that passes, by dtype: float64 differences are exact to ~1e-9, float32
#: backpropagation rounds at ~1e-7 per operation.
TOLERANCES = {"float64": 1e-6, "float32": 1e-4}
#: Output width of the default layers for a head of several classes.
DEFAULT_CLASSES = 3


def _default_width(output):
    """The default layers' output width: one unit for a sigmoid or a linear head, three classes for a softmax."""
    from twinnet.nn.heads import head

    row = head(output)
    return DEFAULT_CLASSES if row.classifier and not row.binary else 1


def _step(text):
    """A finite-difference step within the library's range (:data:`twinnet.nn.gradcheck.EPS_RANGE`)."""
    from twinnet.cli._args import checked
    from twinnet.nn.gradcheck import check_eps

    return checked(check_eps, text, float)


def _layers(text):
    """``"2,6,3"`` -> ``[2, 6, 3]``: positive widths, any output width (the head checks it)."""
    from twinnet import validation
    from twinnet.cli._args import checked, widths

    return checked(lambda dims: validation.layer_widths("layers", dims), text, widths)


def _targets(output, y, m, width, seed):
    """The targets of the check: the data's 0/1 labels for a sigmoid, else drawn from ``seed``.

    A softmax of ``width`` units gets labels drawn uniformly from ``0 .. width-1``, a linear head
    standard normal targets, ``(m,)`` for one unit and ``(m, width)`` for more. Backpropagation is
    right or wrong whatever the targets mean.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    from twinnet.nn.heads import head

    row = head(output)
    if not row.classifier:
        shape = (m,) if width == 1 else (m, width)
        return rng.standard_normal(shape), "random normal targets"
    if not row.binary:
        return rng.integers(0, width, size=m), f"random labels 0..{width - 1}"
    return y, "the data's labels"


def _keep_masks(layers, m, dropout, seed):
    """Dropout's fixed keep masks for the check, one ``(m, n_l)`` array per hidden layer, or None without dropout.

    Drawn as ``fit`` draws them (a unit kept where a uniform draw is ``>= dropout``), from a stream
    of ``seed`` of their own.
    """
    import numpy as np

    if not dropout or len(layers) < 3:
        return None
    rng = np.random.default_rng((seed, 1))  # not the stream of the weights or of the targets
    return [rng.random((m, n)) >= dropout for n in layers[1:-1]]


def register(sub):
    from twinnet.cli._args import penalty, positive_float, positive_int, rate, seed
    from twinnet.data import DATASETS, DEFAULT_DATASET
    from twinnet.validation import ACTIVATIONS, DTYPES, INITIALIZERS, OUTPUTS

    parser = sub.add_parser(
        "gradcheck", help="check backpropagation against finite differences",
        description="Compare the Network's backpropagated gradients with central differences of "
        "its head's loss (log-loss, cross-entropy or mean squared error), parameter by parameter, "
        "and print the relative errors with a pass/fail "
        "verdict (exit status 0 when it passes, 1 when it fails). With --l2 the loss includes the "
        "penalty l2 * sum(W**2); with --dropout, under fixed keep masks drawn from --seed; with "
        "--batch-norm, through the batch's statistics, which move with every weight.",
    )
    parser.add_argument("--data", default=DEFAULT_DATASET, metavar="PATH|NAME",
                        help=f"a data file or a built-in name: {', '.join(DATASETS)} "
                        f"(default: {DEFAULT_DATASET})")
    parser.add_argument("--layers", type=_layers, default=None, metavar="N0,N1,...,NL",
                        help="layer widths, input first; NL is 1 for sigmoid, the number of classes K >= 2 "
                        "for softmax, the number of targets for linear (default: n_features,20,5,1; "
                        "n_features,20,5,3 for softmax)")
    parser.add_argument("--output", default=None, choices=OUTPUTS,
                        help="the output head: sigmoid with the data's 0/1 labels, softmax with K class "
                        "labels or linear with real targets, both drawn at random from --seed "
                        "(default: the data set's head)")
    parser.add_argument("--examples", type=positive_int, default=50,
                        help="use the first N examples, standardized (default: 50)")
    parser.add_argument("--activation", default="relu", choices=[*sorted(ACTIVATIONS), "all"],
                        help="hidden activation, or all of them (default: relu)")
    parser.add_argument("--init", default="normal", choices=sorted(INITIALIZERS),
                        help="weight initializer (default: normal)")
    parser.add_argument("--dtype", default="float64", choices=list(DTYPES),
                        help="the network's dtype (default: float64)")
    parser.add_argument("--eps", type=_step, default=1e-5,
                        help="finite-difference step, between 1e-8 and 1e-2 (default: 1e-5)")
    parser.add_argument("--tolerance", type=positive_float, default=None,
                        help="largest relative error that passes "
                        f"(default: {TOLERANCES['float64']:g} for float64, {TOLERANCES['float32']:g} for float32)")
    parser.add_argument("--l2", type=penalty, default=0.0,
                        help="L2 penalty l2 * sum(W**2) in the loss (default: 0)")
    parser.add_argument("--dropout", type=rate, default=0.0, metavar="RATE",
                        help="dropout rate of every hidden layer, in [0, 1), under fixed keep masks drawn from "
                        "--seed: one training step's gradients (default: 0)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="batch normalization of every hidden layer's pre-activation, Keras's "
                        "Dense(use_bias=False) -> BatchNormalization() -> Activation, with the batch's "
                        "statistics: gamma and beta are checked in place of the hidden biases (default: off)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the weights, of drawn targets and of dropout's masks (default: 0)")
    parser.set_defaults(func=run)


def run(args):
    from twinnet import data
    from twinnet.lab.config import default_layers
    from twinnet.nn import Network, gradcheck
    from twinnet.nn.gradcheck import count_kinks
    from twinnet.nn.heads import default_output, head
    from twinnet.validation import ACTIVATIONS

    if args.layers and args.output:  # a head that does not fit the output width, before loading the data
        default_output(args.output, args.layers[-1])
    if args.batch_norm and args.examples < 2:
        raise ValueError(f"--batch-norm needs --examples 2 or more: one example normalizes every hidden unit to "
                         f"beta, so no gradient reaches the earlier layers; got --examples {args.examples}")
    loaded = data.load_dataset(args.data)
    output = args.output or loaded.output
    if head(output).binary and not head(loaded.output).binary:
        raise ValueError(f"--output {output} checks on the data's 0/1 labels, but the targets of {args.data} are "
                         f"for a {loaded.output} head: leave --output out, or choose a head whose targets are drawn "
                         "at random (softmax, linear)")
    X, y = loaded.X[: args.examples], loaded.y[: args.examples]
    (X,) = data.standardized(X)
    default = [*default_layers(X.shape[1])[:-1], _default_width(output)]
    layers = args.layers or default
    if args.layers and not args.output:  # the data's head
        default_output(output, layers[-1])
    if layers[0] != X.shape[1]:
        raise ValueError(
            f"--layers starts with {layers[0]} inputs but {args.data} has {X.shape[1]} features; "
            f"e.g. --layers {','.join(map(str, default))}."
        )
    y, told = _targets(output, y, X.shape[0], layers[-1], args.seed)
    tolerance = args.tolerance or TOLERANCES[args.dtype]
    activations = sorted(ACTIVATIONS) if args.activation == "all" else [args.activation]
    masks = _keep_masks(layers, X.shape[0], args.dropout, args.seed)
    regularization = (f", l2 {args.l2:g}" if args.l2 else "") + (
        f", dropout {args.dropout:g} under fixed masks ({sum(int(M.sum()) for M in masks)} of "
        f"{sum(M.size for M in masks)} units kept)" if masks else "") + (
        ", batch norm (the batch's statistics)" if args.batch_norm else "")
    print(f"gradient check: {args.data}, {X.shape[0]} examples (standardized), layers "
          f"{','.join(map(str, layers))}, {output} head ({told}), init {args.init}, {args.dtype}, "
          f"eps {args.eps:g}{regularization}")
    header = f"{'activation':<12}{'parameter':<11}{'shape':<12}{'relative error':>15}"
    print(header)
    print("-" * len(header))
    worst, kinks, not_finite = 0.0, {}, []
    for activation in activations:
        net = Network(layers, output=output, hidden_activation=activation, init=args.init, l2=args.l2,
                      dropout=args.dropout, batch_norm=args.batch_norm, seed=args.seed, dtype=args.dtype)
        shapes = {name: value.shape for name, value in net.parameters.items()}
        try:
            errors = gradcheck(net, X, y, eps=args.eps, masks=masks)
        except FloatingPointError as exc:  # no error to measure: a failure, with its reason
            print(f"{activation:<12}{'all':<11}{'':<12}{'NaN or inf':>15}  <- not finite")
            not_finite.append(f"{activation}: {exc}")
            continue
        for name, error in errors.items():
            flag = "" if error <= tolerance else "  <- too large"
            print(f"{activation:<12}{name:<11}{shapes[name]!s:<12}{error:>15.2e}{flag}")
            worst = max(worst, error)
        kinks[activation] = count_kinks(net, X, args.eps, masks)
    for activation, count in kinks.items():
        if count:
            print(f"note: {count} {activation} pre-activation(s) lie within eps of the kink at 0, "
                  "where a central difference measures neither slope; a large error there is not "
                  "a bug if a smaller --eps or another --seed makes it vanish")
    if not_finite:
        more = f" {len(not_finite) - 1} more activation(s) likewise." if len(not_finite) > 1 else ""
        print(f"FAIL: {not_finite[0]}{more}")
        return 1
    passed = worst <= tolerance
    verdict = "PASS" if passed else "FAIL"
    relation = "<=" if passed else ">"
    print(f"{verdict}: largest relative error {worst:.2e} {relation} tolerance {tolerance:g}")
    return 0 if passed else 1
