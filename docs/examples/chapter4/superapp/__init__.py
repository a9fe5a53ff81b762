"""A stand-in for the "superapp" project the chapter 4 example imports (not part of isc)."""
