"""The layer of a called function's gradient, from the forward function it differentiates.

A layer whose `call` is a `tf.function` (or any function the step calls, not inlined
into it by name) runs as a call op inside the layer's scope
(`model_1/layer_1/StatefulPartitionedCall/MatMul`), but the gradient of that call is a
function of its own that the tape calls at the step's root, with the forward function's
op names inside it (`PartitionedCall/gradients/MatMul_grad/MatMul_1`): no layer name at
all. The op names it differentiates (`MatMul`, `Relu`) are the forward function's own,
so the one forward call whose ops carry all of them is the one; its layer is theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .opnames import WRAPPER

Layer = tuple[str, ...] | None


def function_gradient_layers(
    ops: Iterable[tuple[str, str]], name_layer: Callable[[str], Layer]
) -> dict[str, Layer]:
    """{op name: layer} for the ops of root-level gradient functions of called functions."""
    ops = list(ops)
    grads: dict[tuple[str, ...], tuple[set[str], list[str]]] = {}  # grad scope -> (refs, ops)
    # Such a gradient's ops sit right under call wrappers (`...PartitionedCall/gradients/`):
    # one substring test per op finds the few candidates, and most traces have none.
    for name in (n for n, _ in ops if "Call/gradients/" in n):
        comps = name.split("/")
        g = comps.index("gradients")
        # `<wrappers>/gradients/<fwd op>_grad/...`: only wrappers above (the root).
        if g < 2 or not all(WRAPPER.match(c) for c in comps[:g]):
            continue
        refs, members = grads.setdefault(tuple(comps[: g + 1]), (set(), []))
        members.append(name)
        for k in range(g + 1, len(comps) - 1):
            if comps[k].endswith("_grad"):
                refs.add("/".join([*comps[g + 1 : k], comps[k][: -len("_grad")]]))
                break
    if not grads:
        return {}
    forward: dict[tuple[str, ...], tuple[set[str], Layer]] = {}  # call scope -> (names, layer)
    for name, _ in ops:
        if name.find("Call/", name.find("/") + 1) < 0 or "gradient_tape/" in name:
            continue  # no call wrapper below the first scope, or the tape's work
        comps = name.split("/")
        if "gradients" in comps:
            continue
        # The innermost call wrapper below some scope: what follows is the function's.
        at = max((i for i, c in enumerate(comps[:-1]) if i > 0 and WRAPPER.match(c)), default=0)
        if at and not all(WRAPPER.match(c) for c in comps[:at]):
            names, _ = forward.setdefault(tuple(comps[: at + 1]), (set(), name_layer(name)))
            names.add("/".join(comps[at + 1 :]))
    out: dict[str, Layer] = {}
    for refs, members in grads.values():
        if not refs:
            continue
        found = [layer for names, layer in forward.values() if refs <= names]
        if len(found) == 1 and found[0]:
            out.update(dict.fromkeys(members, found[0]))
    return out
