"""The master: rounds of inputs, polling for results, STOP (``master``); what it hands back (``summary``)."""
