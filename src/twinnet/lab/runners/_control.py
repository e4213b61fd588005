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
