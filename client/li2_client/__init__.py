"""li2_client — the Python SDK of Li2 Lab (experiments-as-a-service for the Li2 theory of grokking).

    from li2_client import Client, Spec
    client = Client()                       # LI2_URL / LI2_TOKEN, or ~/.config/li2lab/config.toml
    exp = client.submit(Spec.cyclic(23).train_fraction(0.4).epochs(300))
    exp.wait(timeout=600, progress=True)
    exp.metrics()                           # pandas DataFrame, every recorded epoch
    exp.timeline().stages                   # [Stage(name, start_epoch, end_epoch, ...)]

Talks HTTP only: no torch, flask, celery or SQLAlchemy is imported or installed.
"""
__version__ = "0.1.0"

from .errors import (AuthError, Conflict, Li2Error, NotFound, QuotaExceeded, RunFailed,  # noqa: E402
                     ServerError, ValidationError, WaitTimeout)
from .config import ConfigError  # noqa: E402
from .builder import Spec, SpecBuilder  # noqa: E402
from .results import Features, Predictions, ScalingLaw, Stage, Timeline  # noqa: E402
from .experiments import Experiment  # noqa: E402
from .sweeps import Sweep  # noqa: E402
from .client import Client  # noqa: E402

__all__ = [
    "Client", "Experiment", "Sweep", "Spec", "SpecBuilder",
    "Timeline", "Stage", "Features", "Predictions", "ScalingLaw",
    "Li2Error", "AuthError", "NotFound", "ValidationError", "Conflict", "QuotaExceeded",
    "ServerError", "WaitTimeout", "RunFailed", "ConfigError",
]
