"""The config contract (``ecspilot.yaml``): typed models, loading and validation.

The keys are the users' interface (see docs/ARCHITECTURE.md): fields may be added, none
renamed. :func:`load_config` reads the file named by ``ECSPILOT_CONFIG`` (via
Settings); every problem is reported with its path inside the file, such as
``services[2].containers.app.tags``.

Modules: :mod:`.base` (the base model, name and tag rules, image sources), :mod:`.jobs` (job
models), :mod:`.schema` (services, daemons, the whole file), :mod:`.loading` (YAML in, typed
config or every problem out).
"""

from typing import TYPE_CHECKING, Any

from ecspilot.domain.config.base import (
    NAME_RE,
    OVERRIDE_FIELDS,
    REPOSITORY_RE,
    TAG_GLOB_RE,
    ImageSource,
    Model,
)
from ecspilot.domain.config.health import CrashLoopConfig, crash_loop_policy
from ecspilot.domain.config.jobs import (
    CapacityProviderItem,
    ContainerOverride,
    JobConfig,
    JobOverrides,
    NetworkConfig,
    PlacementSpec,
    QueueConfig,
    RetryPolicy,
)
from ecspilot.domain.config.promotion import AccountConfig, PromoteConfig, root_of
from ecspilot.domain.config.schema import ClusterTag, DaemonConfig, EcspilotConfig, ServiceConfig
from ecspilot.domain.config.stops import FreezeConfig, IncidentsConfig, WindowConfig

if TYPE_CHECKING:
    from ecspilot.domain.config.loading import format_loc, load_config, parse_config

_LOADING = ("format_loc", "load_config", "parse_config")


def __getattr__(name: str) -> Any:
    """The loader's functions, imported on first use: a Lambda reading its compact form
    (:mod:`.compact`) never parses or validates the YAML."""
    if name in _LOADING:
        from ecspilot.domain.config import loading  # noqa: PLC0415 - see above

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NAME_RE",
    "OVERRIDE_FIELDS",
    "REPOSITORY_RE",
    "TAG_GLOB_RE",
    "AccountConfig",
    "CapacityProviderItem",
    "ClusterTag",
    "ContainerOverride",
    "CrashLoopConfig",
    "DaemonConfig",
    "EcspilotConfig",
    "FreezeConfig",
    "ImageSource",
    "IncidentsConfig",
    "JobConfig",
    "JobOverrides",
    "Model",
    "NetworkConfig",
    "PlacementSpec",
    "PromoteConfig",
    "QueueConfig",
    "RetryPolicy",
    "ServiceConfig",
    "WindowConfig",
    "crash_loop_policy",
    "format_loc",
    "load_config",
    "parse_config",
    "root_of",
]
