"""The worker: one pass claims and runs a task (``worker``), through a claimer, its pending
tasks, recovery of stale claims, the attempt itself, one heartbeat thread and a stop switch."""
