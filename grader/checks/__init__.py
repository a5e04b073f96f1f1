"""One small function per check: each takes a Student and its settings and returns CheckResults."""
