"""``python -m jaxmlp``."""

from jaxmlp.cli import run

run()
