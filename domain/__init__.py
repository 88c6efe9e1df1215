"""The Job aggregate, its state machine, commands and progress arithmetic. No I/O."""
