"""`batch exec`: run a program on every item or block, in parallel."""
