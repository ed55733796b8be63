"""Model families behind one adapter: a table of functions per backend."""
