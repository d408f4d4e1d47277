"""Ingesting JSON Lines: line by line, with worker processes, or as a dry run."""
