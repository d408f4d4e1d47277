"""Views derived from a network's log: provider set, component status, directory."""
