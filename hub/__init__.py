"""LearnHub: a privacy-first learning platform on JupyterHub."""

from pathlib import Path

__version__ = "0.1.0.dev0"

# The JupyterHub configuration file the hub runs (`jupyterhub -f`), installed with the package.
HUB_CONFIG = str(Path(__file__).with_name("jupyterhub_config.py"))
