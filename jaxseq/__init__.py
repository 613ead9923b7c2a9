"""jaxseq: functional JAX/Flax code for studying recurrent and graph neural networks.

Layout (data flows one way, config -> data -> model -> train -> results):

- ``jaxseq.data``: sequence tasks generated on device, text corpora, citation graphs.
- ``jaxseq.models``: Flax linen cells written from their equations, sequence models, graph layers.
- ``jaxseq.train``: optax optimisers from config, jitted steps, multi-seed (vmap) runs, results files.
- ``jaxseq.analysis``: gradient-norm inspection and figures.
"""

__version__ = "0.1.0"
