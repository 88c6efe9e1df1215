"""Read models built from job events: the job view, the job list and the logs."""
