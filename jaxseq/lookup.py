"""Name -> object look-ups with errors that list the valid names."""

from typing import Mapping, TypeVar

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
    """Return ``registry[name]``.

    Args:
      registry: mapping from public names to objects (models, optimisers, tasks, ...).
      name: the name a user asked for.
      what: what the registry holds, used in the error ("model", "optimizer").
    Returns:
      The registered object.
    Raises:
      ValueError: naming the unknown ``name`` and listing the valid ones.
    """
    if name not in registry:
        valid = ", ".join(sorted(registry))
        raise ValueError(f"unknown {what} {name!r}; choose one of: {valid}")
    return registry[name]
