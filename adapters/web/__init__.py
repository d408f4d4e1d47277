"""The web console: the listings, each network's status now or then, and its log, as pages."""
