"""MVBench task (``task.TASK``) and its data generator (``synth.synth_mvbench``)."""
