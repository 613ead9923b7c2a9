"""The files a run leaves: the run directory and its rows (``results.py``), who owns each output
(``guard.py``), checkpoints (``checkpoints.py``) and the character model's run directory
(``text_runs.py``). Trainers never write files; scripts hand their results to these modules."""
