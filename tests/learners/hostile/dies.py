"""Hostile: ends its process in different ways."""
import os
import signal
import sys

sys.exit(3)


def relu(Z):
    os._exit(7)


def sigmoid(Z):
    os.kill(os.getpid(), signal.SIGKILL)


def linear_forward(A, W, b):
    return A, (A, W, b)  # wrong, and checked in a fresh process after the two above
