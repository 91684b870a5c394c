"""What the components run on: model references and shared lazy loading, micro-batching, the one LRU cache and
the one atomic file write. Nothing here knows about FAQs, conversations or HTTP."""
