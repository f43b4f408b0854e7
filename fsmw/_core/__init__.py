"""The file protocol of fsmw, on one page.  It imports nothing from the master, worker or tools.

Data flow of one task (every arrow is a file-system call through ``system``)::

    master                      round-k/shard-i/ (Shard)             worker
    ------                      ------------------------             ------
    create_input_file  --temp+rename-->  t.in  (shard i+1 once shard i is full)
    (all written)      --rename-->       ../SEALED (in round-k/, the RoundDir)
                                         .worker.<me>   <--create--  Token (one per shard)
                                         t.claim.1      <--link----  Claimer.claim (EEXIST: lost)
                                         (mtime moves)  <--utime---  Heartbeat, every lease/5
                                         t.out          <--publish-  if the claim is still ours
    step(): a listing per unfinished shard -->  RoundView (outputs, failed, running...)
    all done or failed     --rename-->   ../CLOSED (next round) / STOP (store root)

Modules, bottom up: ``system`` (the seams: file system, clock, threads),
``errors``, ``layout`` (every name), ``records`` (``key: value`` records),
``atomic`` (two-stage files), ``owner`` (who writes), ``view`` (a listing,
parsed), ``claims`` (claims, fencing, fcntl witness), ``shard`` (a shard's
paths and records: failures and breaks have one home there), ``rounddir``
(a round's markers and shards), ``store`` (the store's paths and its one
check), ``token``, ``lease`` (judging heartbeats
on the judge's own clock), ``fsinfo`` (local or shared; the file system's
clock), ``journal``, ``pacing``.

Invariants (each module's docstring says how it keeps its part):
  * a final name never has partial content, and a no-clobber publish never
    replaces an existing file: at most one ``<task>.out`` per task;
  * exactly one process wins each claim generation; a claim name never goes
    missing once made, so no generation is won twice;
  * a holder publishes only while its claim name still points at its own
    inode (fencing), so a broken holder's late result becomes ``.dup``;
  * a lease is judged by whether a heartbeat moved, on the judge's own
    monotonic clock, never by comparing clocks;
  * the number of ``<task>.err.*`` records is the number of failed attempts,
    and ``<task>.failed`` appears only when it reaches ``max_attempts``;
  * a round's files live only in its own directory, so nothing late of round
    k can satisfy round k+1; a task's files live only in its shard.
"""
