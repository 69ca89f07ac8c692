"""Human-readable one-line summaries of shards, for `auglift cache ls` / `cache verify`."""
from __future__ import annotations

from pathlib import Path

from .keys import EXPECTED_KEYS_FILE, validate_key
from .reader import Shard, ShardError, open_shard
from .store import is_shard_path, list_shards
from .temps import clean_tmp, stray_temps
from .verify import VerifyReport, mixed_config_hashes, verify_tree

_PROV_SHORT = {"keypoints_2d": "kp", "confidence": "conf", "depth": "depth"}


def provenance_summary(provenance: dict) -> str:
    """e.g. "kp=real conf=real depth=simulated" (+ any extra entries under their own names)."""
    parts = [f"{_PROV_SHORT.get(k, k)}={v}" for k, v in provenance.items()]
    return " ".join(parts)


def ls_fields(shard: Shard) -> dict:
    a = shard.attrs
    return {
        "key": shard.key,
        "backend": shard.backend,
        "frames": shard.n_frames,
        "K": shard.n_keypoints,
        "detector": (a.get("detector") or {}).get("name", "?"),
        "depth": (a.get("depth_backend") or {}).get("kind", "?"),
        "provenance": provenance_summary(a.get("provenance") or {}),
    }


def ls_line(fields: dict) -> str:
    return (f"{fields['key']:<40} {fields['backend']:<5} {fields['frames']:>7} frames  "
            f"K={fields['K']:<3} det={fields['detector']:<14} depth={fields['depth']:<17} "
            f"{fields['provenance']}")


def report_lines(report: VerifyReport, root: Path | None = None) -> list[str]:
    name = report.key or (str(report.path.relative_to(root)) if root and report.path.is_relative_to(root)
                          else str(report.path))
    if report.ok:
        return [f"OK    {name}  ({report.n_frames} frames)"]
    return [f"FAIL  {name}  [{report.path}]"] + [f"      - {p}" for p in report.problems]


def read_key_list(path: Path) -> list[str]:
    """Keys one per line; blank lines and '#' comments ignored. Bad keys raise ValueError."""

    keys = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                keys.append(validate_key(line))
            except ValueError as e:
                raise ValueError(f"{path}:{n}: {e}") from None
    return keys


def ls_report(path: Path) -> tuple[list[str], bool]:
    """Lines for `auglift cache ls` and whether every shard could be opened."""

    lines, ok, frames, n = [], True, 0, 0
    for p in list_shards(path):
        try:
            with open_shard(p) as shard:
                fields = ls_fields(shard)
        except (ShardError, OSError, KeyError) as e:
            lines.append(f"ERROR {e}" if str(p) in str(e) else f"ERROR {p}: {e}")
            ok = False
            continue
        lines.append(ls_line(fields))
        frames += fields["frames"]
        n += 1
    lines.append(f"total: {n} shards, {frames} frames" + ("" if ok else " (some shards unreadable)"))
    return lines, ok


def _expected_lines(reports: list[VerifyReport], expect_keys: list[str]) -> tuple[list[str], int]:
    found = {r.key for r in reports if r.key}
    missing = [k for k in expect_keys if k not in found]
    lines = [f"FAIL  {k}  (expected, missing)" for k in missing]
    extra = sorted(found - set(expect_keys))
    if extra:
        lines.append(f"note: {len(extra)} shard(s) not in the expected list: {', '.join(extra[:5])}"
                     + (" ..." if len(extra) > 5 else ""))
    return lines, len(missing)


def _temp_lines(path: Path, clean: bool) -> tuple[list[str], bool]:
    strays = stray_temps(path)
    if not (clean and strays):
        return [f"{len(strays)} stray temporaries (interrupted writes) under {path / '.tmp'}"
                + (" (delete with --clean-tmp when no writer is running)" if strays else "")], True
    done = clean_tmp(path)
    lines = [f"deleted {len(done.deleted)} stray temporaries (interrupted writes) under {path / '.tmp'}"]
    lines += [f"FAIL  could not delete {p}: {why}" for p, why in done.failed]
    return lines, not done.failed


def verify_report(path: Path, expect_keys: list[str] | None = None,
                  clean: bool = False) -> tuple[list[str], bool]:
    """Lines for `auglift cache verify` and whether everything passed.

    Without `expect_keys`, a root's own `expected_keys.txt` (written by the producers before
    they start) is the list of keys that must be there. A dataset whose shards carry several
    config hashes fails (a root mixing configurations), as does a temporary `clean` could not
    delete.
    """

    path = Path(path)
    reports = verify_tree(path)
    lines: list[str] = []
    for r in reports:
        lines += report_lines(r, path)
    n_bad = sum(not r.ok for r in reports)
    record = path / EXPECTED_KEYS_FILE
    if expect_keys is None and not is_shard_path(path) and record.is_file():
        expect_keys = read_key_list(record)
        lines.append(f"expected keys from {record}: {len(expect_keys)}")
    if expect_keys is not None:
        more, n_missing = _expected_lines(reports, expect_keys)
        lines += more
        n_bad += n_missing
    for dataset, hashes in mixed_config_hashes(reports).items():
        lines.append(f"FAIL  dataset {dataset!r} mixes config hashes: "
                     + ", ".join(f"{h} ({n} shards)" for h, n in sorted(hashes.items()))
                     + " - shards made with different configurations in one root")
        n_bad += 1
    lines.append(f"{len(reports)} shards verified: {len(reports) - sum(not r.ok for r in reports)} ok, "
                 f"{n_bad} failed")
    ok_temps = True
    if not is_shard_path(path):
        more, ok_temps = _temp_lines(path, clean)
        lines += more
    return lines, n_bad == 0 and ok_temps
