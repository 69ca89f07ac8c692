"""Reading typed configs: YAML files of dataclass fields, and name -> class registries.

Shared by the precompute, simulator and trainer configs and the detector/depth registries, so
that every config file and every backend name fails the same way: naming the file or key and
listing what is allowed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
from pathlib import Path
from typing import Any, Mapping

import yaml


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """The mapping at the top of a YAML file ({} for an empty file); errors name the file."""

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} file not found") from None
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read the {what} ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the {what} must be a mapping of fields, got {type(data).__name__}")
    return data


def check_fields(cls, values: Mapping[str, Any], where: str) -> None:
    """Raise naming `where` when `values` is not a mapping or has keys that `cls` lacks."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")


def registered(registry: Mapping[str, str], package: str, name: str, what: str) -> Any:
    """What `registry` names `name`: "module:attr" is that attribute of `package.module`, "module"
    the module itself. The one registry pattern of auglift (detectors, depth backends, dataset
    adapters, lifters, studies): a registry is a plain {name: "module[:attr]"} dict, and the module
    is imported only here, so listing a registry never loads a heavy backend.
    """
    try:
        module, _, attr = registry[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; choose from {sorted(registry)}") from None
    loaded = importlib.import_module(f"{package}.{module}")
    return getattr(loaded, attr) if attr else loaded


def with_overrides(cfg: Any, overrides: Mapping[str, Any], given_only: bool = True) -> Any:
    """A copy of the dataclass `cfg` with the fields named by dotted paths replaced, e.g.
    {"seed": 1, "views.num_views": 3}. With `given_only`, a value of None (an option not given)
    or an empty list leaves the field as it is; without it (`--set field=none`) it is set. The
    one way the command line overrides a config (options of train/simulate/precompute, study --set)."""
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in overrides.items():
        if given_only and (value is None or (isinstance(value, (list, tuple)) and not value)):
            continue
        head, _, rest = path.partition(".")
        if head not in {f.name for f in dataclasses.fields(cfg)}:
            raise ValueError(f"{type(cfg).__name__} has no field {head!r} (override {path!r})")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            changes[head] = value
    for head, sub in nested.items():
        changes[head] = with_overrides(changes.get(head, getattr(cfg, head)), sub, given_only)
    return dataclasses.replace(cfg, **changes)


@contextlib.contextmanager
def writing(path: str | Path):
    """Re-raise an OSError of the block (e.g. a full disk, whose write errors name no file) as
    one naming `path`, so that the user sees which file could not be written."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
