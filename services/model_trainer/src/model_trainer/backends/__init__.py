"""Model families: `presets` (torch-free sizes and capabilities), `causal_lm` (the backend
interface and everything families share), one module per family, and `registry`."""
