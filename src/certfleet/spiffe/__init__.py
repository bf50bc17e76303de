"""SPIFFE workload identity: SPIFFE IDs, registration entries, selectors and SVID templates."""
