"""The ctilink model: inbound events, the mode machine, the network aggregate."""
