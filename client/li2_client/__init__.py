"""li2_client — the Python SDK of Li2 Lab (experiments-as-a-service for the Li2 theory of grokking).

    from li2_client import Client, Spec
    client = Client()                       # LI2_URL / LI2_TOKEN, or ~/.config/li2lab/config.toml
    exp = client.submit(Spec.cyclic(23).train_fraction(0.9).epochs(150))   # groks: test accuracy 1.0
    exp.wait(timeout=600, progress=True)
    exp.metrics()                           # pandas DataFrame, every recorded epoch
    exp.timeline().stages                   # [Stage(name, start_epoch, end_epoch, ...)]

Talks HTTP only: no torch, flask, celery or SQLAlchemy is imported or installed.
"""

from importlib.metadata import version

__version__ = version("li2-client")  # the one version: client/pyproject.toml

from .builder import Spec, SpecBuilder
from .client import Client
from .config import ConfigError
from .errors import (
    AuthError,
    Conflict,
    Li2Error,
    NotFound,
    QuotaExceeded,
    RunFailed,
    ServerError,
    ValidationError,
    WaitTimeout,
)
from .experiments import Experiment
from .results import Features, Predictions, ScalingLaw, Stage, Timeline
from .searches import Search
from .sweeps import Sweep

__all__ = [
    "AuthError",
    "Client",
    "ConfigError",
    "Conflict",
    "Experiment",
    "Features",
    "Li2Error",
    "NotFound",
    "Predictions",
    "QuotaExceeded",
    "RunFailed",
    "ScalingLaw",
    "Search",
    "ServerError",
    "Spec",
    "SpecBuilder",
    "Stage",
    "Sweep",
    "Timeline",
    "ValidationError",
    "WaitTimeout",
]
