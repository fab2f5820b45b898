"""The orchestrator: workers' configuration, client, health, queue, scheduler, dashboard."""
