"""The lmms-eval 0.7.x bridge, both ways (lmms-eval is imported only inside these modules' functions):

- ``tasks.export_task``: a vpbench task as an lmms-eval ``--include_path`` task folder (docs carry
  vpbench's sample, prompt and protocol; scoring calls vpbench's parser and scorer);
- ``model.VpbenchLmms``: any vpbench backend spec as an lmms-eval model (``--model vpbench
  --model_args spec=DIR``), fed vpbench's own frames;
- ``backend``: an lmms-eval model class as a vpbench backend (``--model lmms:NAME,k=v,...``).
"""
