from .base import *  # noqa: F403 - temporary, until the split into one module per kind
from .base import _unsealed  # noqa: F401
