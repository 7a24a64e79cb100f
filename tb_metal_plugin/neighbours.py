"""Layers that op names cannot give, read off an op's neighbours on its thread.

TF's executor runs a small op right after the op that completed its inputs, on the same
thread, and hands its output to the consumer next; `TraceEvents.sequences` keeps each
host thread's op events of one step in start order. Each function returns
{op name: layer path or None} for the ops it decides; the rest keep their name's layer.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence

from .opnames import (
    ACCUMULATOR_TYPE,
    NON_COMPUTE,
    body_prefix,
    creation_index,
    is_accumulator,
    is_backward,
    is_mark,
    name_is_backward,
    restart,
    strip_suffix,
    tail,
)

Layer = tuple[str, ...] | None
# Scopes of TF's normalization functions (`tf.nn.moments`, `batch_normalization`).
STATS_SCOPES = frozenset({"moments", "batchnorm"})
# The tape's stand-in gradients for outputs nothing used: made from the forward value.
LIKE_TYPES = frozenset({"ZerosLike", "OnesLike"})
Op = tuple[str, str]
_UNSET = object()  # not in a cache (None is an answer there)


def _winner(votes: dict) -> dict:
    return {name: max(v, key=lambda k: v[k]) for name, v in votes.items()}


def tape_layers(
    tape: set[str],
    seqs: Iterable[Sequence[Op]],
    backward_layer: Callable[[Iterable[Op]], Layer],
    name_layer: Callable[[str], Layer],
    scoped_phase: Callable[[str, str], str | None],
    regularized: bool,
) -> dict[str, Layer]:
    """The tape's root `AddN`/`zeros_like`: the layer of the gradients they sum.

    A sum belongs to the deepest layer its inputs (the gradients from the tensor's
    consumers) share. The trace shows one input, the gradient that ran just before it,
    and the consumer, the gradient of the tensor's producer that runs just after it; the
    deepest layer those two share stands in for the inputs'. Two cases say more: a sum
    right after the gradient of a normalization's statistics (`moments`, `batchnorm`) is
    that layer's own reuse of its input; a sum followed by the optimizer is a weight's
    gradient, its layer's unless regularizers add theirs (then no one layer).
    """
    votes: dict[str, dict[Layer, int]] = {}
    for seq in seqs:
        for i, (name, _) in enumerate(seq):
            if name not in tape:
                continue
            before = [op for op in reversed(seq[max(0, i - 2) : i]) if name_is_backward(op[0])]
            pred = backward_layer(before)
            if seq[i][1] in LIKE_TYPES and i > 0:
                # `zeros_like(x)` reads only x, a forward value, and runs right after x's maker.
                pred = name_layer(seq[i - 1][0])
            nxt = seq[i + 1] if i + 1 < len(seq) else None
            if nxt is not None and scoped_phase(*nxt) == "optimizer":
                pick = None if regularized else pred
            else:
                succ = backward_layer(seq[i + 1 : i + 3])
                # A normalization reuses its input (statistics, then the normalized value):
                # the sum right after the gradient of its statistics is that layer's own.
                stats = before and STATS_SCOPES & set(before[0][0].split("/")[:-1])
                pick = pred if stats else _shared(pred, succ)
            v = votes.setdefault(name, {})
            v[pick] = v.get(pick, 0) + 1
    return _winner(votes)


def input_casts(
    ops: list[Op],
    seqs: Iterable[Sequence[Op]],
    name_layer: Callable[[str], Layer],
    first_start: dict[Op, int] | None = None,
    consumers: Callable[[str], list[str]] | None = None,
    the_models: Callable[[str], bool] | None = None,
) -> dict[str, Layer]:
    """A Cast directly in a model's scope, run just before one of its layers: that layer's.

    `Layer.__call__` casts its inputs to the layer's compute dtype (mixed precision, a
    float32 head) before it opens the layer's scope, so the cast lands in the caller's
    scope; the layer it feeds usually runs next on the same thread. When the executor put
    other work there, the layer whose forward compute starts first after the cast does.
    Its gradient (under `gradient_tape/<same path>/`) follows it. Only when some layer
    casts inside its own scope too (its weights, under mixed precision): else the cast is
    the model's. `consumers` (the step graph's, when the run wrote one) names the ops that
    read a cast: their layer is the cast's. `the_models(name)`: True for a cast known to be
    the model's own (Keras 3.6's Functional casting to a compute dtype).
    """
    casts: dict[str, tuple[str, ...]] = {}
    inside = False  # a layer below a model casting something of its own
    for name, op_type in ops:
        if op_type != "Cast" or name_is_backward(name):
            continue
        comps = name.split("/")
        model = name_layer(name)
        t = restart(tail(comps))
        if model and len(t) >= 2 and strip_suffix(t[-2]) == model[-1]:
            if the_models is None or not the_models(name):
                casts[name] = model
        elif model and len(model) > 1:
            inside = True
    if not inside:
        # Layers cast their inputs when they compute in another dtype (mixed precision),
        # and then cast their weights too. Without that, a model-level Cast is the
        # model's own (Functional converting an int64 input to its Input's int32).
        return {}
    votes: dict[str, dict[Layer, int]] = {}
    for seq in seqs if casts else ():
        for i, (name, _) in enumerate(seq):
            model = casts.get(name)
            if model is None:
                continue
            for nxt, nxt_type in seq[i + 1 : i + 4]:
                if name_is_backward(nxt) or nxt_type in NON_COMPUTE:
                    continue
                q = name_layer(nxt)
                if q and len(q) > len(model) and q[: len(model)] == model:
                    v = votes.setdefault(name, {})
                    v[q[: len(model) + 1]] = v.get(q[: len(model) + 1], 0) + 1
                break
    out = _winner(votes)
    for name, layer in _next_started(set(casts) - set(out), casts, first_start, name_layer):
        out[name] = layer
    for name in list(out) if consumers is not None else ():
        # The step graph says which layer reads the cast: no timing needed.
        model = casts[name]
        fed = {
            q[: len(model) + 1]
            for c in consumers(name)
            if (q := name_layer(c)) and len(q) > len(model) and q[: len(model)] == model
        }
        if len(fed) == 1:
            out[name] = fed.pop()
    moved = {"/".join(restart(tail(n.split("/")))): layer for n, layer in out.items()}
    for name, _ in ops if moved else ():
        comps = name.split("/")
        if "gradient_tape" not in comps:
            continue
        rest = "/".join(restart(tail(comps[comps.index("gradient_tape") + 1 :])))
        for fwd, layer in moved.items():
            if rest.startswith(fwd + "/"):
                out[name] = layer
    return out


def _next_started(
    names: set[str],
    model_of: dict[str, tuple[str, ...]],
    first_start: dict[Op, int] | None,
    name_layer: Callable[[str], Layer],
) -> Iterable[tuple[str, Layer]]:
    """(cast, child layer) for each cast whose model's next forward compute is a child's."""
    if not names or not first_start:
        return
    starts = sorted(
        (t, name)
        for (name, op_type), t in first_start.items()
        if op_type not in NON_COMPUTE and not name_is_backward(name)
    )
    times = [t for t, _ in starts]
    for cast in sorted(names):
        t0 = first_start.get((cast, "Cast"))
        if t0 is None:
            continue
        model = model_of[cast]
        for _, nxt in starts[bisect.bisect_right(times, t0) :]:
            q = name_layer(nxt)
            if q and len(q) > len(model) and q[: len(model)] == model:
                yield cast, q[: len(model) + 1]
                break


def accumulator_layers(
    ops: list[Op], seqs: Iterable[Sequence[Op]], name_layer: Callable[[str], Layer]
) -> dict[str, Layer]:
    """A while_v2 accumulator belongs to the layer whose gradient pops the value it pushes.

    The gradient loop pops each accumulated value inside the gradient op that needs it, so
    the pops' names count, per layer, how many values each layer's gradient needs: in an
    RNN mostly the cell's (its gates' activations), and the loop's own (the step index and
    the input list's shape, for the input's gradient) when the RNN's input needs one.
    Which push feeds which pop the trace does not show; a push mostly runs right after
    the op that made its value, so each layer first takes the pushes that follow its own
    ops, up to its count; the rest fill the counts left, largest first. A loop whose
    pops name no layer keeps the old answer: its one deeper layer (the cell), if any.
    """
    # (The type first: few ops are pushes, and only those need their name split.)
    acc = {n for n, t in ops if t == ACCUMULATOR_TYPE and is_accumulator(n.split("/"), t)}
    if not acc:
        return {}
    inner: dict[str, set[tuple[str, ...]]] = {}
    pops: dict[Layer, int] = {}
    for name, op_type in ops:
        comps = name.split("/")
        if op_type == "TensorListPopBack" and is_backward(comps):
            layer = name_layer(name)
            pops[layer] = pops.get(layer, 0) + 1
        body = body_prefix(comps)
        if body is None or is_backward(comps) or op_type in NON_COMPUTE:
            continue
        layer = name_layer(name)
        if layer:
            inner.setdefault(body, set()).add(layer)
    evidence = _maker_layers(acc, seqs, name_layer)
    by_loop: dict[tuple[str, ...], list[str]] = {}
    out: dict[str, Layer] = {}
    for name in sorted(acc):
        mine = name_layer(name)
        if not mine:
            continue
        by_loop.setdefault(mine, []).append(name)
        deeper = {
            q
            for q in inner.get(body_prefix(name.split("/")) or "", ())
            if len(q) > len(mine) and q[: len(mine)] == mine
        }
        if len(deeper) == 1:
            out[name] = deeper.pop()
    for mine, names in by_loop.items():
        # How many values each layer at or below the loop's pops.
        left = {q: n for q, n in pops.items() if q and q[: len(mine)] == mine}
        if not left:
            continue
        pairs = sorted(
            (-share, name, q)
            for name in names
            for q, share in evidence.get(name, {}).items()
            if share > 0.5 and q in left
        )
        placed: dict[str, Layer] = {}
        for _, name, q in pairs:
            if name not in placed and left[q] > 0:
                placed[name] = q
                left[q] -= 1
        _fill_between(names, placed, left)
        for name in names:
            if name not in placed:
                # The most values still unplaced; on a tie the deeper layer (the cell's).
                q = max(left, key=lambda k: (left[k], len(k), k))
                placed[name] = q
                left[q] = max(0, left[q] - 1)
        out.update(placed)
    return out


def _fill_between(names: list[str], placed: dict[str, Layer], left: dict[Layer, int]) -> None:
    """Place the pushes the makers left open, from TF's creation order.

    The gradient code creates the accumulators while it walks the loop body's ops in
    reverse, one layer's ops after another's, so each layer's pushes get consecutive
    names. An open push between two of one layer's is that layer's; at the edge of a
    block it joins the block before or after it while that layer's pops want more, or
    starts the block of a layer none of whose pushes is placed yet.
    """
    order = sorted(names, key=creation_index)
    for i, name in enumerate(order):
        if name in placed:
            continue
        before = next((placed[n] for n in reversed(order[:i]) if n in placed), None)
        after = next((placed[n] for n in order[i + 1 :] if n in placed), None)
        if before is not None and before == after:
            pick = before
        elif before is not None and left.get(before, 0) > 0:
            pick = before
        elif after is not None and left.get(after, 0) > 0:
            pick = after
        else:
            fresh = set(placed.values())
            pick = max(
                (q for q, n in left.items() if n > 0 and q not in fresh),
                key=lambda q: (left[q], len(q), q),
                default=None,
            )
            if pick is None:
                continue  # the counts are spent: the fill below decides
        placed[name] = pick
        left[pick] = max(0, left.get(pick, 0) - 1)


def _maker_layers(
    acc: set[str], seqs: Iterable[Sequence[Op]], name_layer: Callable[[str], Layer]
) -> dict[str, dict[Layer, float]]:
    """Per push, the share of its runs that came right after an op of each layer, that op
    in the same loop body (the maker of the value; it may itself have been made for the
    gradient there, the input list's length, but a pop of the gradient loop running
    beside it made nothing this push stores)."""
    hits: dict[str, dict[Layer, int]] = {}
    runs: dict[str, int] = {}
    for seq in seqs:
        for i, (name, _) in enumerate(seq):
            if name not in acc:
                continue
            runs[name] = runs.get(name, 0) + 1
            j = i - 1
            while j >= 0 and seq[j][0] in acc:
                j -= 1  # pushes queue behind one another; the value's maker is before them
            if j < 0 or body_prefix(seq[j][0].split("/")) != body_prefix(name.split("/")):
                continue
            layer = name_layer(seq[j][0])
            h = hits.setdefault(name, {})
            h[layer] = h.get(layer, 0) + 1
    return {n: {q: k / runs[n] for q, k in h.items()} for n, h in hits.items()}


def gradient_runs(
    seqs: Iterable[Sequence[Op]],
    weak: set[str],
    backward_layer: Callable[[str], Layer],
    forward_start: dict[tuple[str, ...], int],
) -> dict[str, Layer]:
    """Root ops that a gradient function made without a scope: backward, of the layer between.

    A custom gradient (Keras's swish/silu) builds its ops outside any scope, so they sit
    at the root, but they run in the backward pass: on their thread, right after the
    gradient of the layer after it and right before the gradient of the layer before it;
    the run is the gradient of the layer whose forward pass came right after the latter.
    Returns {op name: layer} (the layer may be None: backward, layer unknown).
    """
    out: dict[str, Layer] = {}
    for seq in seqs:
        i = 0
        while i < len(seq):
            if seq[i][0] not in weak:
                i += 1
                continue
            j = i
            while j < len(seq) and (seq[j][0] in weak or seq[j][1] in NON_COMPUTE):
                j += 1
            after = backward_layer(seq[i - 1][0]) if i > 0 else None
            before = backward_layer(seq[j][0]) if j < len(seq) else None
            if after and before:
                layer = _between(after, before, forward_start)
                for name, _ in seq[i:j]:
                    if name in weak:
                        out[name] = layer
            i = j
    return out


def _between(a: tuple[str, ...], b: tuple[str, ...], start: dict[tuple[str, ...], int]) -> Layer:
    """The sibling layer that ran its forward pass first after b's, before a's.

    The run computes the gradient of what b's output fed on its way to a: with the
    layers in forward order, that is the one right after b (the only one, in a chain).
    With none between, it is b's own (a layer's fused activation, `Conv2D(activation=
    "swish")`, is the last of its forward pass and the first of its backward pass).
    """
    if a not in start or b not in start:
        return None
    if start[a] < start[b]:
        a, b = b, a
    parents = {a[:-1], b[:-1]}
    inside = [(t, q) for q, t in start.items() if start[b] < t < start[a] and q[:-1] in parents]
    return min(inside)[1] if inside else b


def _shared(a: Layer, b: Layer) -> Layer:
    """The deepest layer both paths are in (either one when the other is unknown)."""
    if not a or not b:
        return a or b
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n] or None


def forward_starts(
    first_start: dict[Op, int], read_layer: Callable[[str], Layer], head_layers: dict
) -> dict[tuple[str, ...], int]:
    """Where each layer's forward pass sits in the recorded step: its median op start.

    Reads, and updates of statistics that need only variables (a BatchNorm's moving
    means), run whenever a thread is free; the median of a layer's op starts stays with
    its data-dependent work. `head_layers`: read_layer's answers per scope string so far.
    """
    starts: dict[tuple[str, ...], list[int]] = {}
    for (name, op_type), t in first_start.items():
        if op_type in NON_COMPUTE or op_type.startswith("Assign"):
            continue
        head, sep, _ = name.rpartition("/")
        # (name_is_backward's own first test, before its call: most names fail it)
        if "grad" in head and name_is_backward(name):
            continue
        # read_layer's per-scope-string answer, looked up before its call.
        layer = head_layers.get(head if sep else None, _UNSET)
        if layer is _UNSET or (head and is_mark(name[len(head) + 1 :])):
            layer = read_layer(name)
        if layer:
            starts.setdefault(layer, []).append(t)
    return {layer: sorted(ts)[len(ts) // 2] for layer, ts in starts.items()}
