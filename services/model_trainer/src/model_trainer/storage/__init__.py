"""Where runs, corpora and job records live."""
