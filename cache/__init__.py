"""Shard cache: one Zarr (default) or HDF5 shard per sequence and camera.

The on-disk contract is cache/FORMAT.md. Writing is atomic (a shard is complete and verifiable
or absent); reading is lazy (slices, batches, edge-padded windows).
"""
from .keys import BACKENDS, backend_of, key_for, sanitise_component, shard_path, validate_key
from .reader import Shard, ShardError, open_shard
from .schema import (
                     DEPTH_FAMILIES,
                     DEPTH_KINDS,
                     FORMAT_VERSION,
                     PROVENANCES,
                     REQUIRED_ARRAYS,
                     config_hash,
                     depth_family,
                     ordinal_array_name,
                     to_jsonable,
)
from .store import ShardWriter, list_shards, write_shard
from .temps import Cleaned, clean_tmp, stray_temps
from .verify import VerifyReport, verify_shard, verify_tree

__all__ = [
    "BACKENDS", "Cleaned", "DEPTH_FAMILIES", "DEPTH_KINDS", "FORMAT_VERSION", "PROVENANCES", "REQUIRED_ARRAYS",
    "Shard", "ShardError", "ShardWriter", "VerifyReport",
    "backend_of", "clean_tmp", "config_hash", "depth_family", "key_for", "list_shards", "open_shard", "ordinal_array_name",
    "sanitise_component", "shard_path", "stray_temps", "to_jsonable", "validate_key",
    "verify_shard", "verify_tree", "write_shard",
]
