"""JupyterHub configuration for LearnHub: everything comes from the operator's settings file."""

import sys
from pathlib import Path

from learnhub.config import apply_config
from learnhub.settings import SettingsError, load_settings

try:
    apply_config(c, load_settings())  # noqa: F821 (JupyterHub provides c)
except SettingsError as e:
    sys.exit(f"LearnHub cannot start, invalid settings: {e}")

# Overrides for one machine, kept out of version control.
_local = Path(__file__).with_name("jupyterhub_config.local.py")
if _local.exists():
    exec(compile(_local.read_text(), str(_local), "exec"))  # noqa: S102
