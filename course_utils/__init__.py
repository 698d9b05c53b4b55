"""course_utils: the companion package of the course notebooks.

Map of the package (data flows downward; notebooks call into it, it never
imports a notebook, and only ``plots`` and ``widgets`` import matplotlib):

- ``settings``  fast mode, data/cache directories, seeding, device, env report
- ``train``     fit / evaluate / predict, History, callbacks, AMP, checkpoints
- ``plots``     every figure: ``ax=None`` in, ``Axes`` out
"""

from course_utils.settings import (
    cache_dir,
    data_dir,
    env_report,
    get_settings,
    is_fast,
    pick,
    resolve_device,
    seed_everything,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "cache_dir",
    "data_dir",
    "env_report",
    "get_settings",
    "is_fast",
    "pick",
    "resolve_device",
    "seed_everything",
]
