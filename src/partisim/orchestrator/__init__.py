"""The direct tools: talk to the workers without a queue (menu, demo, check, dispatch,
local workers, terminal views), and the CLI's workflows on serve (`batches`)."""
