"""The worker: one pass claims and runs a task (``worker``), through a claimer, its pending
tasks, recovery of stale claims, the attempt itself, a keeper process (or a heartbeat thread)
and a stop switch."""
