"""Devices, seeding, threads, progress bars and which process writes: the run-time context every
stage shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ._validate import check_positive_int, is_integer

#: The kinds of device computations run on (``torch.device(...).type``).
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = None, gpus: int = 0) -> torch.device:
    """The device to compute on: ``device`` if given, else CUDA when ``gpus`` >= 1, else CPU.

    Raises ``ValueError`` for an unknown device string, a device of another kind than
    :data:`DEVICE_TYPES` (``"meta"`` holds shapes without values: nothing can be computed on it),
    or when CUDA or MPS is asked for and not available.
    """
    gpus = check_positive_int(gpus, "gpus", allow_zero=True)
    if device is None:
        device = "cuda" if gpus > 0 else "cpu"
    accepted = "Expected device to be 'cpu', 'cuda', 'cuda:N' or 'mps'"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{accepted} but got {device!r}") from exc
    if resolved.type not in DEVICE_TYPES:
        why = " (a device of shapes without values)" if resolved.type == "meta" else ""
        raise ValueError(f"{accepted} but got {str(resolved)!r}{why}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"Asked for device {str(resolved)!r} (gpus={gpus}) but CUDA is not available on this "
            "machine: install a CUDA build of torch or use device='cpu' / gpus=0"
        )
    index = resolved.index
    if resolved.type == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ValueError(
            f"Asked for device {str(resolved)!r} but only {torch.cuda.device_count()} "
            "CUDA device(s) are visible"
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("Asked for device 'mps' but MPS is not available on this machine")
    return resolved


#: The seeds torch accepts: a signed or unsigned 64-bit integer.
SEED_RANGE = (-(2**63), 2**64 - 1)


def check_seed(seed: Any) -> int | None:
    """``seed`` as an int, if it is None or an integer in :data:`SEED_RANGE` (``seed=0`` is a
    seed)."""
    if seed is None:
        return None
    low, high = SEED_RANGE
    if not is_integer(seed) or not low <= seed <= high:
        raise ValueError(
            f"Expected seed to be None or an integer from -2**63 to 2**64 - 1 (torch's seed "
            f"range) but got {seed!r}"
        )
    return int(seed)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device | None = None) -> Iterator[None]:
    """Run the block with torch's global RNGs seeded from ``seed``, restoring them afterwards.

    ``seed=None`` leaves the RNGs alone (and still restores nothing). ``seed=0`` is a seed.
    """
    seed = check_seed(seed)
    if seed is None:
        yield
        return
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


#: Models with fewer parameters than this count as small for ``num_threads="auto"``: their
#: operations take microseconds to a fraction of a millisecond, too short to gain from more threads,
#: while a thread team that must wait for a core another process holds makes each one last a
#: scheduler time slice (seen here: 100x slower training on a 2-core machine with the other core
#: busy).
SMALL_MODEL_PARAMS = 100_000

#: ``num_threads`` values: a thread count, ``"auto"`` (one thread for small work on the CPU,
#: torch's setting otherwise) or None (torch's setting, untouched).
NumThreads = int | str | None


def check_num_threads(value: Any) -> NumThreads:
    """``value`` if it is None, ``"auto"`` or a positive integer."""
    if value is None or value == "auto":
        return value
    if not is_integer(value) or value < 1:
        raise ValueError(
            f"Expected num_threads to be a positive integer, 'auto' or None but got {value!r}"
        )
    return int(value)


def is_small_model(n_params: int, device: torch.device) -> bool:
    """True for a model on the CPU with fewer than :data:`SMALL_MODEL_PARAMS` parameters."""
    return device.type == "cpu" and n_params < SMALL_MODEL_PARAMS


@contextlib.contextmanager
def thread_scope(num_threads: NumThreads, *, small: bool) -> Iterator[None]:
    """Run the block with torch's intra-op CPU thread count set by ``num_threads`` (see
    :data:`NumThreads`; ``small`` says whether the work counts as small for ``"auto"``), and
    restore the count afterwards. None changes nothing: thread changes are opt-in."""
    num_threads = check_num_threads(num_threads)
    wanted = (1 if small else None) if num_threads == "auto" else num_threads
    before = torch.get_num_threads()
    if wanted is None or wanted == before:
        yield
        return
    torch.set_num_threads(int(wanted))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def progress_bar(iterable: Any = None, *, enabled: bool, **kwargs: Any) -> Any:
    """A tqdm progress bar (to stderr) that is silent when ``enabled`` is False."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled, leave=False, dynamic_ncols=True, **kwargs)


def is_initialized() -> bool:
    """Whether a ``torch.distributed`` process group is initialised in this process."""
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


def is_writer() -> bool:
    """Whether this process writes files: always, except on the ranks other than 0 of a
    ``torch.distributed`` job."""
    import torch.distributed as dist

    return not is_initialized() or dist.get_rank() == 0
