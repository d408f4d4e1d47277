"""The `ctilink` command line."""
