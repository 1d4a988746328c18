"""The actor runtime: actors, mailboxes, supervisors and trees; it knows nothing of tasks."""
