"""newsbeam's entry points and assembly: command line, options, config, the batch graph, demo."""

import logging


class _BeamGcpImportNoise(logging.Filter):
    """apache-beam installed without its [gcp] extra logs a warning about BigQuery client
    libraries on the root logger when it is imported. newsbeam does not use them, so for a
    person running the command it is noise; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_BeamGcpImportNoise())
