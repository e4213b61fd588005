"""A Griffe extension for the API reference: docstrings as Python sees them, Sphinx roles as code.

``TwinNetClassifier`` and ``TwinNetRegressor`` share the text of their hyperparameters through a
decorator that fills placeholders in their docstrings when the module is imported. Griffe reads
the source, so for the objects named in ``mkdocs.yml`` the reference takes the imported docstring.
The docstrings' Sphinx roles (``:func:`fit```) are shown as code (``fit``), as Markdown has none.
"""

import inspect
import re

import griffe

SPHINX_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):`~?([^`]+)`")


class RuntimeDocstrings(griffe.Extension):
    def __init__(self, paths):
        self.paths = set(paths)

    def on_object(self, *, obj, **kwargs):
        if obj.path in self.paths:
            obj.docstring = griffe.Docstring(inspect.getdoc(griffe.dynamic_import(obj.path)), parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = SPHINX_ROLE.sub(r"`\1`", obj.docstring.value)
