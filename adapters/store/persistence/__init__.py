"""How rows are written, and read back for writing: the recorders, the codec, the tables."""
