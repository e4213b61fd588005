"""Hostile: takes the reference instead of writing the functions (fake PASS by import)."""
from twinnet.functional import *  # noqa: F403
