"""Load pickles that hold only numpy arrays and plain Python containers, and nothing else.

Dataset releases (3DPW's sequence files, the MPI-INF-3DHP and H36M camera pickles) ship as
pickles. A pickle can name any importable callable and call it while loading, so a plain
`pickle.load` of a downloaded file runs whatever the file says. `load_pickle` refuses every
global except the few that rebuild numpy arrays, dtypes and scalars, a handful of builtin
containers and `_codecs.encode` (how Python 3 protocol-2 pickles spell bytes); a refused
global raises `UnsafePickleError` before anything is called.
"""
from __future__ import annotations

import _compat_pickle
import builtins
import importlib
import io
import pickle
from pathlib import Path

import numpy

# (module, name) pairs that may be looked up. numpy 2 pickles name `numpy._core`, numpy 1
# pickles `numpy.core`; both resolve to whichever exists in the running numpy.
_NUMPY_ALLOWED = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
}
_NUMPY_TOP_ALLOWED = {"ndarray", "dtype"}
_BUILTINS_ALLOWED = {"set", "frozenset", "complex", "bytearray", "slice", "range"}
# Protocol-2 pickles written by Python 3 rebuild `bytes` (e.g. an array's buffer) through
# _codecs.encode(text, "latin1"): a pure function, allowed for that.
_OTHER_ALLOWED = {("_codecs", "encode")}
# Python 2 names (`__builtin__.set`, also what Python 3 writes at protocol < 3) are mapped to
# Python 3 ones first, as pickle's own find_class does; `copy_reg._reconstructor` (how Python 2
# rebuilds plain objects) stays refused.


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (or is not a pickle at all)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str, **kwargs):
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str):
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if module == "numpy" and name in _NUMPY_TOP_ALLOWED:
            return getattr(numpy, name)
        for prefix in ("numpy.core.", "numpy._core."):
            if module.startswith(prefix) and (module[len(prefix):], name) in _NUMPY_ALLOWED:
                return _numpy_attr(module[len(prefix):], name)
        if module == "builtins" and name in _BUILTINS_ALLOWED:
            return getattr(builtins, name)
        if (module, name) in _OTHER_ALLOWED:
            return getattr(importlib.import_module(module), name)
        raise UnsafePickleError(f"{self._source}: refused to load global {module}.{name} "
                                "(only numpy arrays and builtin containers are allowed)")


def _numpy_attr(submodule: str, name: str):
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise UnsafePickleError(f"numpy has no {submodule}.{name}")


def loads_pickle(data: bytes, source: str = "<bytes>", encoding: str = "latin1"):
    """Restricted `pickle.loads`. latin1 lets Python-2 pickles of numpy arrays load."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # truncated or not a pickle: say which file
        raise UnsafePickleError(f"{source}: not a readable pickle ({type(e).__name__}: {e})") from None


def load_pickle(path: str | Path, encoding: str = "latin1"):
    """Load the pickle at `path` with the restricted unpickler."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read pickle ({e.strerror})") from None
    return loads_pickle(data, str(path), encoding)
