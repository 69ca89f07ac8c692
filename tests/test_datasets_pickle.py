"""The restricted unpickler: numpy arrays and containers load, anything callable is refused."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from auglift.pipeline.safe_pickle import UnsafePickleError, load_pickle, loads_pickle


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def test_payload_calling_os_system_is_refused_without_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    payload = {"cam": np.eye(3), "nested": [1, {"x": _RunsCommand(marker)}]}
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl: refused to load global (posix|os)\.system"):
        load_pickle(path)
    assert not marker.exists()
    # the same file through plain pickle does run the command: the test payload is real
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_other_callables_are_refused(tmp_path):
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        loads_pickle(pickle.dumps(_CallsEval()), "inline")
    with pytest.raises(UnsafePickleError, match=r"collections\.OrderedDict"):
        from collections import OrderedDict

        loads_pickle(pickle.dumps(OrderedDict(a=1)), "inline")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_and_containers_round_trip(protocol):
    obj = {"R": np.arange(9.0).reshape(3, 3), "name": np.array(["test_cam_1"]), "w": np.int64(2048),
           "f": np.float32(1500.5), "ids": (1, 2), "tags": {"a", "b"}, "z": 1 + 2j, "raw": b"\x00\xff",
           "list": [np.zeros((2, 17, 3), np.float32), None, True]}
    back = loads_pickle(pickle.dumps(obj, protocol=protocol))
    assert back.keys() == obj.keys()
    np.testing.assert_array_equal(back["R"], obj["R"])
    assert back["name"][0] == "test_cam_1" and back["w"] == 2048 and back["f"] == np.float32(1500.5)
    assert back["tags"] == {"a", "b"} and back["z"] == 1 + 2j and back["raw"] == b"\x00\xff"
    assert back["list"][0].dtype == np.float32 and back["list"][1:] == [None, True]


def test_numpy2_module_names_resolve():
    data = pickle.dumps(np.arange(4.0), protocol=2)
    assert b"numpy.core.multiarray" in data
    back = loads_pickle(data.replace(b"numpy.core.multiarray", b"numpy._core.multiarray"))
    np.testing.assert_array_equal(back, np.arange(4.0))


def test_broken_files_name_the_file(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.ones(100)})[:50])
    with pytest.raises(UnsafePickleError, match=r"cut\.pkl: not a readable pickle"):
        load_pickle(path)
    with pytest.raises(FileNotFoundError, match=r"gone\.pkl"):
        load_pickle(tmp_path / "gone.pkl")


def test_shared_pickles_load(shared_data):
    cams = load_pickle(shared_data / "samples" / "h36m_cameras.pkl")
    assert len(cams) == 44 and cams[("S1", "54138969")]["R"].shape == (3, 3)
    test = load_pickle(shared_data / "samples" / "3dhp_cameras_test.pkl")
    assert sorted(test) == [f"TS{i}" for i in range(1, 7)] and test["TS5"]["f"].shape == (2, 1)
    train = load_pickle(shared_data / "samples" / "3dhp_cameras_train.pkl")
    assert len(train) == 128 and {k.split("_")[2] for k in train} == {f"Cam{i}" for i in (0, 1, 2, 4, 5, 6, 7, 8)}
