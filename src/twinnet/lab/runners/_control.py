"""Training control shared by the runners that support it: early stopping's callback and what it reports."""


def early_stopping(config):
    """``(callbacks, callback)``: the list to hand a ``fit`` (None without early stopping) and the callback."""
    callback = config.early_stopping_callback()
    return (None if callback is None else [callback]), callback


def stopped(callback):
    """``{"stopped_epoch": ..., "best_epoch": ...}`` counted from 1, as :class:`~twinnet.lab.results.Trained`
    takes them.

    Keras counts epochs from 0 and says 0 for a run it did not stop (it never stops in epoch 0).
    """
    if callback is None:
        return {}
    return {"stopped_epoch": callback.stopped_epoch + 1 if callback.stopped_epoch > 0 else None,
            "best_epoch": callback.best_epoch + 1}


def dropout_note(config, library):
    """The note of a twin that draws its own dropout masks: not on the reference's trajectory."""
    return (f"{library} draws its own dropout masks (rate {config.dropout:g}), other than Network's, so its run "
            "is not on the same trajectory; compare its accuracy, not its loss curve")


def l2_rounding_note(config):
    """Why a Keras or PyTorch twin's loss strays from Network's with an ``l2`` that float32 does not hold, or None.

    Keras weighs its ``L2`` penalty by ``l2`` rounded to float32, and the PyTorch twin follows it;
    ``Network`` takes ``l2`` as given. In float64 their losses then differ by about
    ``|l2 - float32(l2)| * sum(W**2)``, far above rounding; a power of two (0.0078125) is held exactly.
    """
    import numpy as np

    rounded = float(np.float32(config.l2))
    if config.dtype != "float64" or rounded == config.l2:
        return None
    return (f"weighs the L2 penalty by l2 rounded to float32 ({rounded!r}), as Keras does, where Network takes "
            f"l2={config.l2!r}: the losses differ by about {abs(rounded - config.l2):.2g} * sum(W**2)")
