"""The notebook API (`import auglift`): one namespace, light to import, cues for one image, a cache
opened as a mapping that checks each shard before handing it out. (`auglift.lift` is what
`auglift lift` calls: tests/test_lift.py.)"""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import numpy as np
import pytest
from test_cache_support import h36m_sequence, key_of

import auglift
from auglift.cache import ShardError, shard_path, write_shard
from auglift.pipeline.sources.base import get_dataset


def test_import_auglift_from_elsewhere_is_light(tmp_path):
    code = ("import sys, auglift\n"
            "print(sorted(m for m in ('torch', 'mediapipe', 'cv2', 'auglift.lifters') if m in sys.modules))\n"
            "print(callable(auglift.open_cache) and callable(auglift.lift) and callable(auglift.cues_for_image))")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["[]", "True"]


def test_installed_distribution_claims_only_the_auglift_name():
    # The installed distribution (site-packages), not the build's auglift.egg-info in the checkout.
    site_dirs = [p for p in sys.path if p.endswith("site-packages")]
    dists = list(importlib.metadata.distributions(name="auglift", path=site_dirs))
    assert len(dists) == 1, f"auglift installed {len(dists)} times in {site_dirs}"
    files = dists[0].files or []
    tops = {f.parts[0] for f in files
            if f.parts[0] != ".." and not f.parts[0].endswith((".dist-info", ".pth"))
            and not f.parts[0].startswith(("__editable__", "__pycache__"))}
    assert tops <= {"auglift"}, f"the install claims top-level names {sorted(tops - {'auglift'})}"


@pytest.mark.slow
def test_cues_for_one_real_image_follow_the_actor(shared_data):
    samples = get_dataset("samples", shared_data)
    ref = next(r for r in samples.list_sequences() if r.subject == "h36m-S1")
    seq = samples.load(ref)
    cues = auglift.cues_for_image(seq.image_paths[0])
    assert cues["keypoints_2d"].shape == (17, 2) and cues["confidence"].shape == (17,)
    assert cues["depth"].shape == (17,) and cues["depth_kind"] == "landmark_z"
    assert np.all((cues["confidence"] >= 0) & (cues["confidence"] <= 1))
    err = np.linalg.norm(cues["keypoints_2d"] - seq.guide_2d[0], axis=-1)
    assert np.nanmedian(err) < 25.0, f"median joint error {np.nanmedian(err):.1f} px against the image's GT 2D"
    with pytest.raises(ValueError, match="uint8 RGB"):
        auglift.cues_for_image(np.zeros((10, 10), np.float32))


def test_open_cache_is_a_mapping_that_refuses_a_damaged_shard(shared_data, tmp_path):
    root = tmp_path / "cache"
    keys = []
    for action in ("Walking 1", "Directions 1"):
        arrays, attrs = h36m_sequence(shared_data, action=action)
        write_shard(root, key_of(attrs), arrays, attrs)
        keys.append(key_of(attrs))
    cache = auglift.open_cache(root)
    assert sorted(cache) == sorted(keys) and len(cache) == 2
    shard = cache[keys[0]]
    np.testing.assert_array_equal(shard.read("confidence"), h36m_sequence(shared_data)[0]["confidence"])
    # one flipped byte in a chunk of the other shard: opening it through the mapping refuses it
    chunk = next(p for p in shard_path(root, keys[1]).rglob("*") if p.is_file() and "keypoints_2d" in p.parts
                 and not p.name.startswith((".", "zarr")))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ShardError):
        cache[keys[1]].read("keypoints_2d")
    with pytest.raises(FileNotFoundError):
        auglift.open_cache(tmp_path / "nowhere")
