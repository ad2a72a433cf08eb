"""HTML reports: self-contained files with inline SVG charts, over warehouse tables, blends and runs."""
