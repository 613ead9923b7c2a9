"""Run a jaxseq experiment from any directory, with jaxseq installed (a wheel or ``pip install jaxseq``)::

    python -m jaxseq.run palindrome --config=palindrome:quick --config.sweep.models=mycells:MyCell --out=runs/mine
    jaxseq palindrome --print_config          # the console script: the same
    jaxseq textgen --help                     # an experiment's own flags

The first argument names an experiment (:data:`EXPERIMENTS`) or a script of ``scripts/`` by its
file name (``run_palindrome``); the rest are that script's flags. Configs are found by name
(``--config=palindrome:quick``, or a path of your own), cells of your own by import path from the
current directory (``mycells:MyCell`` is ``./mycells.py``). The wheel carries ``configs/`` and
``scripts/`` as ``jaxseq._configs`` and ``jaxseq._scripts``; in a checkout they are read where they are.
"""

import os
import pathlib
import runpy
import sys
from typing import NoReturn, Optional, Sequence

from jaxseq.config import packaged_dir

# experiment name -> its script in scripts/
EXPERIMENTS = {
    "palindrome": "run_palindrome",
    "frontier": "frontier",
    "grad_norms": "grad_norms",
    "dynamics": "dynamics",
    "atlas": "atlas",
    "optimizers": "compare_optimizers",
    "gnn": "train_gnn",
    "textgen": "train_textgen",
    "generate": "generate",
    "eval_textgen": "eval_textgen",
    "ngram_baseline": "ngram_baseline",
    "textgen_data_size": "textgen_data_size",
}


def script_path(name: str) -> Optional[pathlib.Path]:
    """The script of experiment ``name`` (or of the script file name ``name``); None if there is none."""
    path = packaged_dir("scripts") / f"{EXPERIMENTS.get(name, name)}.py"
    return path if path.is_file() and not name.startswith(("_", "-")) else None


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """``jaxseq EXPERIMENT [flags]``: run the experiment's script as if started from the command line.

    Raises:
      SystemExit: the script's exit code (:mod:`jaxseq.cli`), or 2 with one ``error:`` line for an
        unknown experiment.
    """
    argv = list(sys.argv if argv is None else argv)
    name = argv[1] if len(argv) > 1 else ""
    script = script_path(name) if name else None
    if script is None:
        given = f"unknown experiment {name!r}" if name else "name an experiment"
        print(f"error: {given}; run jaxseq EXPERIMENT [flags] with one of {', '.join(EXPERIMENTS)} "
              "(EXPERIMENT --help lists its flags)", file=sys.stderr)
        sys.exit(2)
    if os.getcwd() not in sys.path:  # cells of your own by import path, as `python -m` would find them
        sys.path.insert(0, os.getcwd())
    sys.argv = [str(script), *argv[2:]]
    runpy.run_path(str(script), run_name="__main__")
    sys.exit(0)


if __name__ == "__main__":
    main()
