"""Setting a job up from its options and running it: a batch run, a stream, a schedule."""
