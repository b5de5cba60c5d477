"""li2: the science core of Li2 Lab.

Group-arithmetic tasks, a batched trainer for the paper's 2-layer network, and the analyses of
Tian's Li2 framework (arXiv 2509.21519): stage timeline, emerged features, energy landscape and
scaling laws. Knows nothing of Flask, Celery or SQL. See docs/design.md for the module map.
"""

from importlib.metadata import version

__version__ = version("li2lab")  # the one version: pyproject.toml
