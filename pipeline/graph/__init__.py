"""The Beam graphs: the stages a batch run and a stream share, and the ends of each."""
