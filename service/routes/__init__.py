"""HTTP routes: health and metrics, purify and classify, KServe V2."""
