"""jaxseq: functional JAX/Flax code for studying recurrent and graph neural networks.

Layout (data flows one way, config -> data -> model -> train -> results):

- ``jaxseq.data``: sequence tasks generated on device, text corpora, citation graphs.
- ``jaxseq.models``: Flax linen cells written from their equations, sequence models over any
  ``RNNCellBase`` cell, graph layers.
- ``jaxseq.train``: optax optimisers from config, pure training runs (``make_train``), multi-seed
  runs, results files.
- ``jaxseq.analysis``: gradient-norm inspection and figures.

Importing jaxseq changes nothing in jax and prints nothing. Batch shards on CPU want one XLA device
per core: call :func:`jaxseq.runner.cpu_devices.request_cpu_devices` before your first jax computation
(the scripts do it in :func:`jaxseq.cli.run_main`); without it they run on host threads instead.
"""

__version__ = "0.1.0"
