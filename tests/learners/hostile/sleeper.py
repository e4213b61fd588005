"""Hostile: every top-level statement sleeps, and so does every function."""
import time

time.sleep(1000)
time.sleep(1000)
time.sleep(1000)
time.sleep(1000)


def relu(Z):
    time.sleep(1000)


def sigmoid(Z):
    time.sleep(1000)


def linear_forward(A, W, b):
    time.sleep(1000)


def relu_backward(dA, Z):
    time.sleep(1000)
