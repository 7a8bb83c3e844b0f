"""MLServer's ``mlserver.codecs``: every codec and helper by its MLServer name (see :mod:`.._codecs`)."""

from ...compat.mlserver.codecs import *  # noqa: F403 - the facade re-exports the implementation's __all__
from ...compat.mlserver.codecs import __all__  # noqa: F401
