"""Payload dicts that render as HTML in Jupyter, without the core importing a face.

`Profile.layers()` and `compare()` return these plain-dict subclasses: JSON, the CLI and the
routes see ordinary dicts; only `_repr_html_` reaches for the notebook renderer.
"""

from __future__ import annotations


class LayersView(dict):
    """A layers payload (a plain dict) that renders as an HTML table in Jupyter."""

    def _repr_html_(self) -> str:
        from .notebook import layers_html

        return layers_html(self)


class ComparisonView(dict):
    """A comparison payload (a plain dict) that renders as an HTML table in Jupyter."""

    def _repr_html_(self) -> str:
        from .notebook import compare_html

        return compare_html(self)
