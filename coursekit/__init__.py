"""coursekit: the reference library of the course on network pruning and the Lottery Ticket Hypothesis."""

__version__ = "0.1.0"
