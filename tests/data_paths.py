"""Skip markers for tests that read real data, checking the same place the loaders read."""

import os

import pytest

from jaxseq.data import graphs


def planetoid_data_dir():
    """The directory the Planetoid loader would use (``$JAXSEQ_DATA``, else ``../shared/data``) if it
    holds ``planetoid/``, else None."""
    try:
        path = graphs.resolve_data_dir()
    except FileNotFoundError:
        return None
    return path if (path / "planetoid").is_dir() else None


needs_planetoid = pytest.mark.skipif(
    planetoid_data_dir() is None,
    reason=f"Planetoid data not found in ${graphs.DATA_ENV} ({os.environ.get(graphs.DATA_ENV, 'unset')}) "
    f"or {graphs.DEFAULT_DATA_DIR}",
)
