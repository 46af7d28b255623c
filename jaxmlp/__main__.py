"""``python -m jaxmlp``."""

from jaxmlp.console import run

run()
