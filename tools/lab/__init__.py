"""Real parts on one machine, as root: :mod:`.gluster` (GlusterFS nodes in
network namespaces), :mod:`.slurm` (a single-node Slurm cluster) and
:mod:`.condor` (a personal HTCondor pool in a Debian 13 chroot).

Used by the cluster tier (tests/cluster), ``tools.soak`` and ``bench.run``.
"""
