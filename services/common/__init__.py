"""Settings, errors and small shared types used by every tailorline service."""
