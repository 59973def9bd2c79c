"""The paper's tables from vpbench runs: tidy frames (tidy), table specs and paper numbers (spec),
cells (cells), exports (export), models configs and ablation grids (grid), the reproduce plan
(plan), its runner (runner) and the command's API (reproduce)."""
