"""Record a small real device trace with JAX's profiler (XSpace with CUPTI device planes).

Run on a machine with an NVIDIA GPU and JAX (it was run once, on the lent H200/H100, to make
tests/fixtures/device/jax_gpu_real/...xplane.pb). JAX writes the same `.xplane.pb` format as
TensorFlow's profiler, through the same XLA/TSL CUPTI collector, so its device planes have the
real stream lines (`Stream #<id>(Compute)`, `(MemcpyH2D)`...) that a TF GPU run has.

The workload: a jitted two-matmul step with its gradient and update, fed by a host->device copy
each step and a device->host read of the loss; each step wrapped in
`jax.profiler.StepTraceAnnotation("train", step_num=i)` (the host step marker xprof recognises),
layers under `jax.named_scope` so kernels carry scoped names.

Usage: python scripts/record_jax_gpu_trace.py OUT_DIR [STEPS]
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import time


def main() -> None:
    out = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    import jax
    import jax.numpy as jnp
    import numpy as np

    print("jax", jax.__version__, jax.devices(), flush=True)

    def forward(params, x):
        with jax.named_scope("dense_a"):
            h = jnp.tanh(x @ params["a"])
        with jax.named_scope("dense_b"):
            y = h @ params["b"]
        return jnp.mean(y * y)

    @jax.jit
    def train_step(params, x):
        loss, grads = jax.value_and_grad(forward)(params, x)
        with jax.named_scope("sgd"):
            params = jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
        return params, loss

    rng = np.random.default_rng(0)
    params = {
        "a": jnp.asarray(rng.standard_normal((512, 512), dtype=np.float32) * 0.05),
        "b": jnp.asarray(rng.standard_normal((512, 256), dtype=np.float32) * 0.05),
    }
    host_batches = [rng.standard_normal((256, 512), dtype=np.float32) for _ in range(steps + 1)]
    # Warm-up: compile outside the trace so the profile holds steady-state steps only.
    params, loss = train_step(params, jax.device_put(host_batches[-1]))
    loss.block_until_ready()

    logdir = os.path.join("/tmp", "jax_trace_logdir")
    shutil.rmtree(logdir, ignore_errors=True)
    kwargs = {}
    try:
        opts = jax.profiler.ProfileOptions()
        opts.python_tracer_level = 0  # keep the file small: no Python function events
        opts.host_tracer_level = 2
        kwargs["profiler_options"] = opts
    except Exception as e:  # noqa: BLE001 - older JAX: defaults
        print("no ProfileOptions:", e)
    t0 = time.time()
    with jax.profiler.trace(logdir, **kwargs):
        for i in range(steps):
            with jax.profiler.StepTraceAnnotation("train", step_num=i):
                x = jax.device_put(host_batches[i])  # host -> device copy
                params, loss = train_step(params, x)
                print("step", i, "loss", float(loss), flush=True)  # device -> host read
    print("traced in %.2fs" % (time.time() - t0))
    files = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    print("files", files)
    os.makedirs(out, exist_ok=True)
    for f in files:
        dst = os.path.join(out, "jax_gpu.xplane.pb")
        shutil.copy(f, dst)
        print(dst, os.path.getsize(dst))


if __name__ == "__main__":
    main()
