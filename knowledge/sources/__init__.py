"""Sources and sync: the paths, sites and sitemaps the knowledge comes from (``[[knowledge.sources]]``), what was
read from each last time (``state``), and ``sync``: bringing the store in line with all of them."""
