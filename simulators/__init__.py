"""Stand-ins for outside sources (an HLS camera served over loopback HTTP)."""
