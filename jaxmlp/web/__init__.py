"""``jaxmlp serve``: a local page to draw a digit and watch BP1–BP4 run on it.

:class:`DigitLab` is the network in memory (predict, backprop, SGD steps, reset);
:func:`make_server` puts it behind a standard-library HTTP server whose page and assets
are this package's ``static`` files.
"""

from jaxmlp.web.lab import DigitLab
from jaxmlp.web.server import LabServer, ServerError, ServerInterrupted, make_server

__all__ = ["DigitLab", "LabServer", "ServerError", "ServerInterrupted", "make_server"]
