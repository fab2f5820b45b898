"""Test helpers shared by several test folders (import as `helpers.<module>` with tests/ on sys.path)."""
