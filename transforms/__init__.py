"""newsbeam's Beam building blocks (PTransforms, DoFns) and the plain logic they wrap."""

import logging


class _BeamGcpImportNoise(logging.Filter):
    """apache-beam installed without its [gcp] extra logs a warning about BigQuery client
    libraries on the root logger when it is imported, in every process that imports it
    (extraction workers too). Only the BigQuery sink needs them, and it says so itself when
    they are missing, so for a person running newsbeam the warning is noise; every other
    record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_BeamGcpImportNoise())
