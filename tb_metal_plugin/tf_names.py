"""Names TF gives on its own, as opposed to Keras's scopes: the scopes of its control flow
and symbolic gradients, and the nodes that feed and fetch a graph run's tensors."""

from __future__ import annotations

import re

# A user may name a layer like a scope TF opens itself (`body`, `cond`, `gradients`): Keras 3
# then suffixes it (`body_1`). TF's own suffixed ones show what they are by what sits
# below: a branch or loop body (`cond_1/then/`, `while_15/body/`) or an op's gradient
# (`gradients_1/.../MatMul_grad/`).
_TF_CONTROL = re.compile(
    r"(?:^|/)((?:while|cond|body|then|else)_\d+)/(?:then|else|body|cond)/", re.M
)
_TF_GRADIENTS = re.compile(r"(?:^|/)(gradients_\d+)/(?:[^/\n]*/)*?[^/\n]*_grad/", re.M)
NAMEABLE_PASS_THROUGH = frozenset({"while", "cond", "body", "then", "else", "gradients"})


def tf_control_components(names) -> frozenset[str]:
    """The suffixed `cond_<k>`, `while_<k>`, `gradients_<k>`... components that TF opened
    in these op names (never a layer scope), as opposed to a layer named like one."""
    text = "\n".join(names)
    return frozenset(_TF_CONTROL.findall(text)) | frozenset(_TF_GRADIENTS.findall(text))


# TF's subgraph rewrite names the nodes that feed and fetch a graph run's tensors after the
# tensor: `_recv_<op>_<output>` and `_send_<op>_<output>` (subgraph.cc, RecvFeedRewrite and
# SendFetchRewrite). Their first component is no scope: the op is the tensor's producer.
_FEED_FETCH_PREFIXES = ("_send_", "_recv_")
_FEED_FETCH_TYPES = frozenset({"_Send", "_Recv"})


def feed_fetch_owner(name: str, op_type: str) -> str | None:
    """The op whose output a graph run's feed or fetch node moves, or None for other ops."""
    if op_type not in _FEED_FETCH_TYPES or not name.startswith(_FEED_FETCH_PREFIXES):
        return None
    owner, sep, index = name[len("_send_") :].rpartition("_")
    return owner if sep and owner and index.isdigit() else None
