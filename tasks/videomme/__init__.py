"""Video-MME (w/o subtitles) task (``task.TASK``) and its data generator (``synth.synth_videomme``)."""
