"""LearnHub's JupyterHub configuration ships in the package (learnhub/jupyterhub_config.py)."""

from learnhub import HUB_CONFIG

load_subconfig(HUB_CONFIG)  # noqa: F821 (JupyterHub provides load_subconfig)
