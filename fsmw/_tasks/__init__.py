"""Generic tasks: Python calls (fsmw.Executor) and commands (fsmw run), run by fsmw worker."""
