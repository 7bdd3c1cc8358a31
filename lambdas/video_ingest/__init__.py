"""Video ingest: poll live HLS cameras, store each segment once, announce it on ``video-metadata``."""
