"""The command handler, the event relay and the job runners."""
