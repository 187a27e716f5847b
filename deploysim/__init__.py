"""deploysim: simulate and run safe, hands-off deployment policies."""
