"""What every shard producer (precompute, simulate, cache build-gt) does the same way.

This is the one place for the producers' resume / conflict / expected-keys policy; each producer
calls it instead of deciding on its own (the seed of the single producer runner of
ARCHITECTURE.md):

- Expected keys: before writing anything, a run records every key it will produce in
  `<out>/expected_keys.txt` (`write_expected_keys`), so that `auglift cache verify` reports the
  shards an interrupted run did not write instead of calling the root complete.
- Resume: a shard already at the final path that verifies and carries this run's config hash is
  kept; one that fails verification is rewritten.
- Conflict: a shard that verifies but was made with another config hash is never replaced
  unless the run was given `overwrite` (`--overwrite`); without it the sequence fails, naming
  the shard and both hashes.
- Races: when two runs write the same key at once, the second commit finds the first's shard;
  if that verifies with the same hash the second run counts the key as kept (both succeed),
  otherwise it is the conflict above.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from auglift.cache import open_shard, sanitise_component, verify_shard
from auglift.cache.keys import EXPECTED_KEYS_FILE
from auglift.cache.temps import pid_tmp_path

KEEP, WRITE, CONFLICT = "keep", "write", "conflict"


@dataclass(frozen=True)
class Decision:
    """What to do about one key: `action` is "keep", "write" or "conflict"; `overwrite` says
    whether the write replaces a shard at the final path; `note` says why (for reports)."""
    action: str
    overwrite: bool = False
    note: str = ""


def decide(path: str | os.PathLike, config_hash: str, overwrite: bool = False) -> Decision:
    """The policy for the shard a run with `config_hash` is about to write at `path`."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return Decision(WRITE)
    if overwrite:
        return Decision(WRITE, True, "replaced (--overwrite)")
    report = verify_shard(path)
    if not report.ok:
        return Decision(WRITE, True, "existing shard failed verification; rewritten: " + "; ".join(report.problems[:3]))
    with open_shard(path) as shard:
        found = shard.attrs.get("config_hash")
    if found == config_hash:
        return Decision(KEEP, note="verified shard with the same config hash")
    return Decision(CONFLICT, note=f"a verified shard made with another configuration (config_hash {found}, "
                                   f"this run {config_hash}) is already there; pass --overwrite to replace it, "
                                   f"or write to another --out")


def conflict_error(path: str | os.PathLike, decision: Decision) -> FileExistsError:
    return FileExistsError(f"{path}: {decision.note}")


def after_race(path: str | os.PathLike, config_hash: str, error: FileExistsError) -> Decision:
    """A write lost a race (`error`: the shard appeared meanwhile): keep the winner's shard if it
    verifies with the same config hash; otherwise raise the conflict (or the original error)."""
    decision = decide(path, config_hash)
    if decision.action == KEEP:
        return Decision(KEEP, note="written meanwhile by another run with the same config hash")
    if decision.action == CONFLICT:
        raise conflict_error(path, decision) from error
    raise error


def write_expected_keys(out: str | os.PathLike, dataset: str, keys: list[str]) -> Path:
    """Refresh `dataset`'s keys in `<out>/expected_keys.txt` (all parts, not only this one).

    Keys of other datasets produced into the same root are kept, so the file lists every
    shard the root should hold. Replaced atomically through `<out>/.tmp/expected_keys.<pid>.tmp`;
    the parts of a job array write the same content, so their races are harmless.
    """
    path = Path(out) / EXPECTED_KEYS_FILE
    prefix = sanitise_component(dataset) + "/"
    others = []
    if path.is_file():
        others = [k for k in path.read_text().split() if k and not k.startswith(prefix)]
    tmp = pid_tmp_path(out, EXPECTED_KEYS_FILE)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.write_text("".join(k + "\n" for k in sorted(set(others) | set(keys))))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
