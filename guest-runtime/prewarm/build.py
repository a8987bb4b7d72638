# kaggle-solver pre-warm build step: runs once, at image build time, after the imports.
#
# It runs through the interpreter's internal `run_private`, in a private namespace, before the
# memory snapshot. It records every RNG object that exists now (they would otherwise hold the
# same state in every run of the image) in a module `_ks_prewarm`, whose `reseed()` the harness
# calls at the start of every run, and then freezes the heap as the guest's own initialiser does.
import functools
import gc
import sys
import types


def _ks_collect_rngs():
    import random

    npr = sys.modules.get("numpy.random")
    kinds = (random.Random,)
    if npr is not None:
        kinds += (npr.RandomState, npr.Generator, npr.BitGenerator)
    found = [
        o
        for o in gc.get_objects()
        if isinstance(o, kinds) and not isinstance(o, random.SystemRandom)
    ]
    # Reseeding costs every run ~0.5 ms per Mersenne Twister in the guest, so nothing is done
    # twice: the interpreter's first turn already reseeds `random`'s and numpy's global
    # generators, and reseeding a RandomState or Generator renews the bit generator it owns.
    skip = {id(getattr(random, "_inst", None))}
    if npr is not None:
        glob = getattr(sys.modules.get("numpy.random.mtrand"), "_rand", None)
        skip.add(id(glob))
        for o in found:
            if isinstance(o, npr.RandomState):
                skip.add(id(o._bit_generator))
            elif isinstance(o, npr.Generator):
                skip.add(id(o.bit_generator))
        if glob is not None:
            skip.add(id(glob._bit_generator))
    return [o for o in found if id(o) not in skip]


def _ks_renew(bg):
    # A BitGenerator built with no seed draws from os.urandom. Its SeedSequence (which `spawn`
    # uses) is renewed too: numpy's pickle support sets both from a (state, seed_seq) pair.
    new = type(bg)()
    try:
        bg.__setstate__((new.state, new._seed_seq))
    except Exception:
        bg.state = new.state  # the audit refuses the image if the SeedSequence stays frozen


def _ks_reseed(rngs):
    import os
    import random

    npr = sys.modules.get("numpy.random")
    for o in rngs:
        if isinstance(o, random.Random):
            o.seed(int.from_bytes(os.urandom(32), "little"))
        elif npr is None:
            continue
        elif isinstance(o, npr.RandomState):
            bg = o._bit_generator
            if isinstance(bg, npr.MT19937):
                o.seed()  # legacy seeding from fresh entropy; drops the gauss cache and seed_seq
            else:
                _ks_renew(bg)
        elif isinstance(o, npr.Generator):
            _ks_renew(o.bit_generator)
        elif isinstance(o, npr.BitGenerator):
            _ks_renew(o)
    # A Python-level default argument can be replaced outright, SeedSequence included.
    grower = sys.modules.get("sklearn.ensemble._hist_gradient_boosting.grower")
    if grower is not None and npr is not None:
        f = grower.TreeGrower.__init__
        if f.__defaults__:
            f.__defaults__ = tuple(
                npr.default_rng() if isinstance(d, npr.Generator) else d for d in f.__defaults__
            )
    mp = sys.modules.get("multiprocessing.process")
    if mp is not None:
        # A secret drawn from os.urandom at import time: harmless without processes, but renew it.
        mp.current_process().authkey = os.urandom(32)


_m = types.ModuleType("_ks_prewarm")
_m.RNGS = _ks_collect_rngs()
# A partial, not a lambda over `_m`: this private namespace is gone once the build step ends.
_m.reseed = functools.partial(_ks_reseed, _m.RNGS)
sys.modules["_ks_prewarm"] = _m
del _m
sys.stdout.flush()
sys.stderr.flush()
gc.collect()
gc.freeze()
