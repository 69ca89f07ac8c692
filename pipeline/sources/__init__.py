# Dataset adapters register themselves in pipeline.sources.base.DATASETS when imported.
from auglift.pipeline.sources import custom, fit3d, h36m, mpi_inf_3dhp, pw3d  # noqa: F401
