"""One arm of the search for what makes ``jax.vmap`` over seeds deadlock on CPU: the multi-seed
program with one construct taken out.

    python benchmarks/hang_bisect.py --arm=batched-init --seeds=8    # prints "done ..." or never returns

Every arm trains the classic palindrome set-up (``configs/palindrome.py``: an LSTM, raw digits,
RMSprop, T = 10, 100 steps) as ``jax.jit(jax.vmap(train))(keys)``. ``as-is`` is the library's
program, and ``lyapunov`` the same followed, in the same vmapped program, by each seed's Lyapunov
spectrum (:mod:`jaxseq.analysis.lyapunov`: a QR written in ``jnp``, so no LAPACK call). Every
other arm initialises the parameters batched under ``vmap``
(:func:`jaxseq.train.state.one_seed_at_a_time` swapped for the identity) and takes out what its
name says (:data:`ARMS`).
``stress_hangs.py --arms=...`` runs each arm many times and counts hangs.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jaxseq.train.sequence_trainer as sequence
from jaxseq.analysis.lyapunov import classifier_cell, lyapunov_spectrum
from jaxseq.config import load_config
from jaxseq.train.sweep import setting_config

ARMS = {
    "as-is": "the library's program: parameters initialised seed by seed",
    "lyapunov": "the library's program, then every seed's top-16 Lyapunov exponents on 16 sequences",
    "batched-init": "parameters initialised batched under vmap, nothing else changed",
    "no-stopping": "batched init; plain updates: no early-stopping masks, no ring buffers",
    "no-eval": "batched init; no evaluation batch at the end",
    "host-data": "batched init; the training batches made once on the host, not generated in the program",
    "no-chunks": "batched init; one scan over the steps, no outer scan over chunks",
    "onehot": "batched init; one-hot digits instead of the raw-digit input",
    "sgd": "batched init; plain SGD: no RMSprop state, no clipping",
    "two-devices": "batched init; jax started with two CPU devices, as the scripts start it",
    "no-qr": "batched init; recurrent weights Xavier-initialised, so no QR anywhere",
    "init-only": "only the batched initialisation, nothing trained",
}
OVERRIDES = {
    "onehot": {"model.encoding": "onehot"},
    "sgd": {"optim.name": "sgd", "optim.clip_norm": 0.0},
    "no-qr": {"model.recurrent_init": "xavier"},
}


class ArmTrainer(sequence.SequenceTrainer):
    """The sequence trainer with the construct named by ``arm`` taken out."""

    def __init__(self, config, arm: str):
        super().__init__(config)
        self.arm = arm
        if arm == "host-data":  # every step's batch, made now, outside the compiled program
            keys = jax.random.split(jax.random.key(1), self.num_steps + 1)
            batches = [jax.device_get(self.get_batch(key)) for key in keys]
            self.host_batches = jax.tree.map(lambda *xs: np.stack(xs), *batches)

    def init(self, rng):
        if self.arm in ("as-is", "lyapunov"):
            return super().init(rng)
        saved = sequence.one_seed_at_a_time
        sequence.one_seed_at_a_time = lambda fn: fn  # init batched under vmap: the batched QRs
        try:
            return super().init(rng)
        finally:
            sequence.one_seed_at_a_time = saved

    def _step_batch(self, run):
        if self.arm == "host-data":
            return jax.tree.map(lambda batches: jnp.asarray(batches)[run.step], self.host_batches)
        return super()._step_batch(run)

    def finish_step(self, run, loss, accuracy, grads):
        if self.arm != "no-stopping":
            return super().finish_step(run, loss, accuracy, grads)
        new_state, metrics = self.apply_gradients(run.train_state, loss, accuracy, grads)
        return run.replace(train_state=new_state, step=run.step + 1), {**metrics, "active": jnp.bool_(True)}

    def evaluate(self, run):
        return {} if self.arm == "no-eval" else super().evaluate(run)

    def train(self, rng):
        if self.arm == "no-chunks":
            run, steps = jax.lax.scan(self._one_step, self.init(rng), None, length=self.num_steps)
            return run, {**steps, **self.evaluate(run)}
        if self.arm == "init-only":
            return self.init(rng), {}
        if self.arm == "lyapunov":
            run, metrics = super().train(rng)
            tokens = self.get_batch(jax.random.key(1), 16).inputs
            cell, params, inputs = classifier_cell(self.model, run.train_state.params, tokens)
            return run, {**metrics, "lyapunov": lyapunov_spectrum(cell, params, inputs, 16, warmup=2)}
        return super().train(rng)


def make_arm(arm: str, **overrides) -> ArmTrainer:
    """The trainer of ``arm`` for the classic set-up at T = 10, 100 steps (``overrides``: more
    dotted config fields, e.g. smaller sizes for a test)."""
    fields = {"model.name": "lstm", "data.length": 10, "train.num_steps": 100, **OVERRIDES.get(arm, {}), **overrides}
    return ArmTrainer(setting_config(load_config("configs/palindrome.py"), **fields), arm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=sorted(ARMS), required=True, help="what to take out")
    parser.add_argument("--seeds", type=int, default=8, help="seeds trained together")
    args = parser.parse_args()
    if args.arm == "two-devices":
        jax.config.update("jax_num_cpu_devices", 2)
    trainer = make_arm(args.arm)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    _, metrics = jax.jit(jax.vmap(trainer.train))(keys)
    final = metrics.get("eval_accuracy", metrics.get("accuracy", jnp.zeros((args.seeds, 1)))[:, -1])
    print("done", args.arm, [round(float(a), 3) for a in jax.device_get(final)], flush=True)


if __name__ == "__main__":
    main()
