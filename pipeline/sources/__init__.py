# Dataset adapters; their registry is pipeline.sources.base.DATASETS (name -> "module:class").
from auglift.pipeline.sources import custom, fit3d, h36m, mpi_inf_3dhp, pw3d  # noqa: F401
