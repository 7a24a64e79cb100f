"""The profiling window's mechanics: batch-range parsing, the step marker, the profiler."""

from __future__ import annotations

import glob
import os
import time
from typing import Any


def parse_profile_batch(profile_batch: Any) -> tuple[int, int]:
    """Return (start, stop) from an int, a pair or "a,b", by the stock callback's rules."""
    # Same rules and message as keras.callbacks.TensorBoard, so a value that works
    # there works here.
    message = (
        "profile_batch must be a non-negative integer or 2-tuple of positive integers. "
        f"A pair of positive integers signifies a range of batches to profile. Found: "
        f"{profile_batch}"
    )
    if isinstance(profile_batch, str):
        try:
            profile_batch = [int(p) for p in profile_batch.split(",")]
        except ValueError as e:
            raise ValueError(message) from e
        if len(profile_batch) == 1:
            profile_batch = profile_batch[0]
    if isinstance(profile_batch, bool):
        raise ValueError(message)
    if isinstance(profile_batch, int):
        start, stop = profile_batch, profile_batch
    elif isinstance(profile_batch, (tuple, list)) and len(profile_batch) == 2:
        start, stop = profile_batch
    else:
        raise ValueError(message)
    if not isinstance(start, int) or not isinstance(stop, int):
        raise ValueError(message)
    if start < 0 or stop < start:
        raise ValueError(message)
    return start, stop


class ProfiledStep:
    """Stand-in for `model.train_function` during the window (removed when it closes).

    `owner` is the callback: `owner._tracing`, `owner._profiled_step(fn, iterator)` and
    `owner._abort(error)` are what it calls.
    """

    def __init__(self, owner: Any, train_function: Any) -> None:
        self.owner = owner
        self.train_function = train_function

    def __call__(self, iterator: Any) -> Any:
        """Run one step: marked while the profiler runs; abort the window if it raises."""
        owner = self.owner
        try:
            if owner._tracing:
                return owner._profiled_step(self.train_function, iterator)
            return self.train_function(iterator)
        except StopIteration:  # the end of the data: fit() handles it
            raise
        except BaseException as e:
            if type(e).__name__ != "OutOfRangeError":  # also the end of the data
                try:
                    owner._abort(e)
                except Exception:  # never hide the user's error behind ours
                    pass
            raise


def synchronize(logs: Any) -> None:
    """Wait until a step's results exist (a GPU step ends when its work has finished)."""
    try:
        import tensorflow as tf

        for value in tf.nest.flatten(logs):
            if hasattr(value, "numpy"):
                value.numpy()
    except Exception:  # waiting is for timing only; never fail the step
        pass


def profiler_busy() -> bool:
    """True while some profiler session (ours or another callback's) is running."""
    try:
        from tensorflow.python.profiler import profiler_v2

        return getattr(profiler_v2, "_profiler", None) is not None
    except Exception:  # private API moved: fall back to start() failing loudly
        return False


def warm_up_profiler() -> None:
    """Start and discard one profiler session: the first one in a process pays set-up."""
    import tensorflow as tf

    if profiler_busy():
        return
    try:
        tf.profiler.experimental.start("")
        tf.profiler.experimental.stop(save=False)
    except Exception:  # warming is an optimisation only
        pass


def trace_files(profile_dir: str) -> list[str]:
    """Every `<host>.xplane.pb` under `profile_dir/plugins/profile/*/`."""
    pattern = os.path.join(glob.escape(profile_dir), "plugins", "profile", "*", "*")
    return [p for p in glob.glob(pattern) if p.endswith(".xplane.pb")]


def avoid_session_collision(profile_dir: str) -> None:
    """Wait (at most ~3 s) until stopping now would not reuse an existing session folder."""
    # TensorFlow names the session folder after the stop time to the second; a second
    # window ending within the same second would overwrite the first's trace.
    root = os.path.join(profile_dir, "plugins", "profile")
    for _ in range(3):
        now = time.time()
        names = {time.strftime("%Y_%m_%d_%H_%M_%S", f(now)) for f in (time.localtime, time.gmtime)}
        if not any(os.path.exists(os.path.join(root, n)) for n in names):
            return
        time.sleep(1.0 - (now % 1.0) + 0.01)


def stock_profiler_overlap(callback_list: Any, start: int, stop: int) -> tuple[int, int] | None:
    """The batch range of a keras.callbacks.TensorBoard in the list that overlaps ours
    (Keras 3's or tf_keras's: by class name, both keep the same window attributes)."""
    for cb in getattr(callback_list, "callbacks", []):
        if not any(c.__name__ == "TensorBoard" for c in type(cb).__mro__):
            continue
        if not getattr(cb, "_should_trace", False):
            continue
        a, b = getattr(cb, "_start_batch", 0), getattr(cb, "_stop_batch", 0)
        if a <= stop and start <= b:
            return a, b
    return None
