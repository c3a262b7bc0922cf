"""LearnHub: a privacy-first learning platform on JupyterHub."""

__version__ = "0.1.0.dev0"
