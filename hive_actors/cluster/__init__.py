"""Scale-out on PostgreSQL: workers sharing sessions, queue and triggers (docs/scale-out.md)."""
