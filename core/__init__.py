"""What both sides of auglift share, below `pipeline/` (which makes cues) and `lifters/` (which
learn from them): the H36M-17 skeleton tables (`skeleton`), cameras (`camera`), the cue codec of
Algorithm 1 (`codec`), typed-config I/O and the one name -> class registry (`config_io`).

Import direction (tests/test_imports.py checks it): cli -> studies -> lifters -> core <- pipeline,
with `cache` at the bottom; core imports nothing of auglift but `cache`.
"""
