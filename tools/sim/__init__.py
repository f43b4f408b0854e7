"""A deterministic simulation of fsmw on an NFS-like file system (issue 11, item 11).

Anchors: FoundationDB's simulation testing and TigerBeetle's VOPR.  Real
:class:`fsmw.Master` and :class:`fsmw.Worker` objects run, each in its own
simulated process (``kernel``), on an in-memory NFS with per-node caches
(``nfs``, ``procfs``), with faults, crashes, freezes and clock skew drawn from
a seed (``faults``); the checker (``checks``) looks at every change.  One
seed is one schedule (``world``); ``python -m tools.sim`` runs many of them
(``runner``) and replays one with its trace.
"""
