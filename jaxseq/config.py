"""Load experiment configs (``configs/<name>.py[:variant]``) outside of absl scripts.

Scripts use ``ml_collections.config_flags`` directly (``--config=configs/palindrome.py:quick``
with ``--config.optim.lr=3e-3`` overrides); tests and notebooks use :func:`load_config`.
"""

import importlib.util
import pathlib

import ml_collections

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Build the config named by ``spec``.

    Args:
      spec: ``"path/to/config.py"`` or ``"path/to/config.py:variant"``; a relative path is
        looked up from the current directory, then from the repository root.
    Returns:
      The locked ``ConfigDict`` returned by the file's ``get_config(variant)``; assigning an
      unknown key to it raises, so typos in overrides are errors.
    """
    path_str, _, arg = spec.partition(":")
    path = pathlib.Path(path_str)
    if not path.exists() and not path.is_absolute():
        path = REPO_ROOT / path
    if not path.exists():
        raise FileNotFoundError(f"config file {path_str!r} not found (looked in . and {REPO_ROOT})")
    module_spec = importlib.util.spec_from_file_location(f"_jaxseq_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg or None)
    config.lock()
    return config
