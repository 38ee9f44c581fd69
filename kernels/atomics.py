"""Atomic integer operations and a spin barrier for CPU kernels that several Python threads run at once.

Numba's CPU target has no atomics, so these are `numba.extending.intrinsic`s that emit LLVM's own
``cmpxchg``/``atomicrmw``/``load atomic`` instructions (sequentially consistent) on one element of an int64
array. They are what the ``locked`` mode's per-stripe spin locks and the ``sync`` mode's in-kernel barrier are
made of. Waiting loops call libc's ``sched_yield`` (bound by symbol name, so kernels stay cacheable): the
machine this runs on is often oversubscribed, and a spinning thread that does not yield can starve the very
thread it waits for.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_SEQ_CST = "seq_cst"


def _element_pointer(context, builder, array_type, array, index):
    array_struct = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, array_struct, [index], wraparound=False)


def _check(array, index):
    return isinstance(array, types.Array) and array.dtype == types.int64 and isinstance(index, types.Integer)


@intrinsic
def atomic_cas(typingctx, array, index, expected, new):
    """``old = array[index]; if old == expected: array[index] = new``, atomically; returns ``old``."""
    if not _check(array, index):
        return None

    def codegen(context, builder, signature, args):
        array_value, index_value, expected_value, new_value = args
        index_value = context.cast(builder, index_value, signature.args[1], types.intp)
        expected_value = context.cast(builder, expected_value, signature.args[2], types.int64)
        new_value = context.cast(builder, new_value, signature.args[3], types.int64)
        pointer = _element_pointer(context, builder, signature.args[0], array_value, index_value)
        pair = builder.cmpxchg(pointer, expected_value, new_value, _SEQ_CST, _SEQ_CST)
        return builder.extract_value(pair, 0)

    return types.int64(array, index, expected, new), codegen


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``old = array[index]; array[index] += value``, atomically; returns ``old``."""
    if not _check(array, index):
        return None

    def codegen(context, builder, signature, args):
        array_value, index_value, add_value = args
        index_value = context.cast(builder, index_value, signature.args[1], types.intp)
        add_value = context.cast(builder, add_value, signature.args[2], types.int64)
        pointer = _element_pointer(context, builder, signature.args[0], array_value, index_value)
        return builder.atomic_rmw("add", pointer, add_value, _SEQ_CST)

    return types.int64(array, index, value), codegen


@intrinsic
def atomic_store(typingctx, array, index, value):
    """``array[index] = value`` atomically (an exchange, so it is also a full fence); returns the old value."""
    if not _check(array, index):
        return None

    def codegen(context, builder, signature, args):
        array_value, index_value, store_value = args
        index_value = context.cast(builder, index_value, signature.args[1], types.intp)
        store_value = context.cast(builder, store_value, signature.args[2], types.int64)
        pointer = _element_pointer(context, builder, signature.args[0], array_value, index_value)
        return builder.atomic_rmw("xchg", pointer, store_value, _SEQ_CST)

    return types.int64(array, index, value), codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]`` read atomically, so a spin loop re-reads memory instead of a hoisted register."""
    if not _check(array, index):
        return None

    def codegen(context, builder, signature, args):
        array_value, index_value = args
        index_value = context.cast(builder, index_value, signature.args[1], types.intp)
        pointer = _element_pointer(context, builder, signature.args[0], array_value, index_value)
        return builder.load_atomic(pointer, _SEQ_CST, 8)

    return types.int64(array, index), codegen


@intrinsic
def sched_yield(typingctx):
    """Give up the core to another runnable thread (libc ``sched_yield``); returns its int status."""

    def codegen(context, builder, signature, args):
        function_type = ir.FunctionType(ir.IntType(32), [])
        function = cgutils.get_or_insert_function(builder.module, function_type, "sched_yield")
        return builder.call(function, [])

    return types.int32(), codegen


# Spins before each yield: long enough to catch a partner that is about to arrive on another core.
_SPINS_PER_YIELD = 64


@njit(nogil=True, cache=True)
def spin_lock(locks, index):
    """Acquire spin lock ``locks[index]`` (0 = free, 1 = held)."""
    spins = 0
    while atomic_cas(locks, index, 0, 1) != 0:
        spins += 1
        if spins >= _SPINS_PER_YIELD:
            sched_yield()
            spins = 0


@njit(nogil=True, cache=True)
def spin_unlock(locks, index):
    """Release spin lock ``locks[index]``."""
    atomic_store(locks, index, 0)


@njit(nogil=True, cache=True)
def barrier_wait(barrier, n_workers):
    """Block until ``n_workers`` threads reach ``barrier`` (int64[3]: count, generation, abort); False if aborted.

    Sense-reversing: the last thread to arrive resets the count and bumps the generation, which releases the
    others; the atomics are sequentially consistent, so every plain write made before the barrier is visible
    to every thread after it. A non-zero ``barrier[2]`` (set by the engine when a worker has failed and will
    never arrive) releases every waiter with False, so the survivors return instead of spinning forever.
    """
    if n_workers <= 1:
        return True
    if atomic_load(barrier, 2) != 0:
        return False
    generation = atomic_load(barrier, 1)
    if atomic_add(barrier, 0, 1) == n_workers - 1:
        atomic_store(barrier, 0, 0)
        atomic_add(barrier, 1, 1)
        return True
    spins = 0
    while atomic_load(barrier, 1) == generation:
        if atomic_load(barrier, 2) != 0:
            return False
        spins += 1
        if spins >= _SPINS_PER_YIELD:
            sched_yield()
            spins = 0
    return True
