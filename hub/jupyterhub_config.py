"""JupyterHub configuration for LearnHub: everything comes from the operator's settings file.

A JupyterHub configuration file, not a module to import: `jupyterhub -f` runs it (learnhub run
and the hub image give its path, learnhub.HUB_CONFIG; a checkout's root jupyterhub_config.py
loads it). It ships in the package, so a wheel, an editable install and the image run the
same file.
"""

import sys

from learnhub.config import apply_config, gather_facts
from learnhub.db import SchemaError
from learnhub.settings import SettingsError, init_state, load_settings

try:
    settings = load_settings()
    # Starting the hub is the step that makes the state directory and its keys.
    init_state(settings)
    apply_config(c, settings, gather_facts(settings))  # noqa: F821 (JupyterHub provides c)
except SchemaError as e:
    sys.exit(f"LearnHub cannot start: {e}")
except SettingsError as e:
    sys.exit(f"LearnHub cannot start, invalid settings: {e}")

# Overrides for one machine, beside the settings file and kept out of version control, read as
# JupyterHub reads its own configuration.
_local = settings.source and settings.source.resolve().with_name("jupyterhub_config.local.py")
if _local and _local.exists():
    load_subconfig(str(_local))  # noqa: F821 (JupyterHub provides load_subconfig)
