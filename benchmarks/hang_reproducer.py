"""Standalone reproducer of the multi-seed deadlock in XLA's CPU runtime (jax + optax only).

An LSTM (H = 128) learns decimal palindromes of length 10 (one-hot digits, batch 128, Adam,
clipping at 10) for ``--steps`` steps in one ``lax.scan``; ``--seeds`` seeds are trained together
with ``jax.vmap`` or ``jax.lax.map``, in chunks of 100 steps, as jaxseq's multi-seed runner does::

    python benchmarks/hang_reproducer.py --seeds=8 --strategy=vmap    # prints "done" or never returns

With jax/jaxlib 0.10.2 on a 2-core CPU the vmap form never returned in a share of the runs, the
process idle at 0 % CPU (benchmarks/README.md gives the counts from ``stress_hangs.py
--reproducer``). Nothing here imports jaxseq, so it can go to the JAX issue tracker as it is.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import optax

B, H, T, V = 128, 128, 10, 10


def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w_x": jax.random.normal(k1, (V, 4 * H)) / jnp.sqrt(V),
        "w_h": jax.random.normal(k2, (H, 4 * H)) / jnp.sqrt(H),
        "b": jnp.zeros(4 * H).at[2 * H : 3 * H].set(1.0),
        "w_out": jax.random.normal(k3, (H, V)) / jnp.sqrt(H),
        "b_out": jnp.zeros(V),
    }


def loss_fn(params, digits):
    x = jax.nn.one_hot(digits[:, :-1], V)  # [B, T-1, V]
    x_proj = jnp.einsum("btv,vk->tbk", x, params["w_x"]) + params["b"]

    def step(carry, xp):
        c, h = carry
        g, i, f, o = jnp.split(xp + h @ params["w_h"], 4, axis=-1)
        c = jnp.tanh(g) * jax.nn.sigmoid(i) + c * jax.nn.sigmoid(f)
        h = jnp.tanh(c) * jax.nn.sigmoid(o)
        return (c, h), None

    zeros = jnp.zeros((B, H))
    (_, h), _ = jax.lax.scan(step, (zeros, zeros), x_proj)
    logits = h @ params["w_out"] + params["b_out"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, digits[:, -1]).mean()


tx = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(1e-3))


def palindromes(key):
    first = jax.random.randint(key, (B, (T + 1) // 2), 0, V)
    return jnp.concatenate([first, first[:, : T // 2][:, ::-1]], axis=1)


def train_chunk(state, steps):
    def one(state, _):
        params, opt_state, key = state
        key, sub = jax.random.split(key)
        loss, grads = jax.value_and_grad(loss_fn)(params, palindromes(sub))
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    return jax.lax.scan(one, state, None, length=steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--strategy", choices=["vmap", "map"], default="vmap")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    def init_state(key):
        params = init(key)
        return params, tx.init(params), key

    def chunk(state):
        return train_chunk(state, 100)

    if args.strategy == "vmap":
        init_all, chunk_all = jax.jit(jax.vmap(init_state)), jax.jit(jax.vmap(chunk))
    else:
        init_all = jax.jit(lambda keys: jax.lax.map(init_state, keys))
        chunk_all = jax.jit(lambda state: jax.lax.map(chunk, state))
    start = time.perf_counter()
    state = init_all(jax.random.split(jax.random.key(0), args.seeds))
    for _ in range(-(-args.steps // 100)):
        state, losses = chunk_all(state)
        losses = jax.device_get(losses)
    print(f"done: {args.seeds} seeds ({args.strategy}), final loss {losses[:, -1].mean():.3f}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
